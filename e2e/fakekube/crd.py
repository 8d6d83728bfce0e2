"""CustomResourceDefinitions: what an applied CRD makes the server serve."""

from __future__ import annotations

from typing import Any

from . import errors
from .resources import Registry, ResourceType, ScalePaths
from .store import JsonObj


def check(registry: Registry, crd: JsonObj) -> None:
    """Reject CRDs the real API server would reject in ways that matter to the tests."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    name = (crd.get("metadata") or {}).get("name", "")
    if not spec.get("group") or not names.get("plural") or not names.get("kind"):
        raise errors.invalid(
            "CustomResourceDefinition", name, "spec.group, spec.names.plural and kind are required"
        )
    if name != f"{names['plural']}.{spec['group']}":
        raise errors.invalid(
            "CustomResourceDefinition", name, 'metadata.name must be spec.names.plural+"."+spec.group'
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        raise errors.invalid("CustomResourceDefinition", name, "spec.scope must be Namespaced or Cluster")
    versions = spec.get("versions") or []
    if not versions or sum(1 for v in versions if v.get("storage")) != 1:
        raise errors.invalid(
            "CustomResourceDefinition", name, "exactly one version must be the storage version"
        )


def established_status(crd: JsonObj) -> JsonObj:
    spec = crd["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", names["kind"] + "List")
    conditions: list[dict[str, Any]] = [
        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
        {
            "type": "Established",
            "status": "True",
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
        },
    ]
    return {
        "conditions": conditions,
        "acceptedNames": names,
        "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
    }


def types_of(crd: JsonObj) -> list[ResourceType]:
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        subs = version.get("subresources") or {}
        scale = subs.get("scale")
        out.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec["scope"] == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                status="status" in subs,
                scale=None
                if scale is None
                else ScalePaths(
                    spec_replicas=scale["specReplicasPath"],
                    status_replicas=scale["statusReplicasPath"],
                    label_selector=scale.get("labelSelectorPath"),
                ),
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                crd=crd["metadata"]["name"],
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
            )
        )
    return out


def register(registry: Registry, crd: JsonObj) -> None:
    registry.remove_crd(crd["metadata"]["name"])
    for rt in types_of(crd):
        registry.add(rt)
