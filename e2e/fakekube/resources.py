"""The resource types served: a fixed table of built-ins plus whatever the applied CRDs declare.

Objects of one group and plural are stored once, whatever version they are read through (a CRD may
serve several versions of the same objects), so a type's storage key is ``(group, plural)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

JsonObj = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalePaths:
    """Where the scale subresource reads and writes, as in a CRD's ``subresources.scale``."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = None
    """None: built-in workloads, whose selector is rendered from ``spec.selector``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status: bool = False
    """Has a ``/status`` subresource: the main endpoint ignores ``.status``, ``/status`` only writes it."""
    scale: ScalePaths | None = None
    schema: JsonObj | None = field(default=None, compare=False)
    """The openAPIV3Schema of a CRD version: used to default and prune."""
    crd: str | None = None
    """The name of the CRD that declared this type; None for built-ins."""
    printer_columns: tuple[JsonObj, ...] = field(default=(), compare=False)
    """The CRD version's ``additionalPrinterColumns`` (server-side printing)."""

    @property
    def api_version(self) -> str:
        return self.version if not self.group else f"{self.group}/{self.version}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """``plural.group`` as error messages spell it."""
        return self.plural if not self.group else f"{self.plural}.{self.group}"


_WORKLOAD_SCALE = ScalePaths()

# (group, version, plural, kind, namespaced, short names, status subresource, scale subresource)
_BUILTINS: tuple[tuple[str, str, str, str, bool, tuple[str, ...], bool, bool], ...] = (
    ("", "v1", "namespaces", "Namespace", False, ("ns",), True, False),
    ("", "v1", "nodes", "Node", False, ("no",), True, False),
    ("", "v1", "pods", "Pod", True, ("po",), True, False),
    ("", "v1", "services", "Service", True, ("svc",), True, False),
    ("", "v1", "endpoints", "Endpoints", True, ("ep",), False, False),
    ("", "v1", "configmaps", "ConfigMap", True, ("cm",), False, False),
    ("", "v1", "secrets", "Secret", True, (), False, False),
    ("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",), False, False),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",), True, False),
    ("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",), True, False),
    ("", "v1", "events", "Event", True, ("ev",), False, False),
    ("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), True, True),
    ("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), True, True),
    ("apps", "v1", "deployments", "Deployment", True, ("deploy",), True, True),
    ("apps", "v1", "controllerrevisions", "ControllerRevision", True, (), False, False),
    ("batch", "v1", "jobs", "Job", True, (), True, False),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), True, False),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",), False, False),
    ("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",), True, False),
    ("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True, (), False, False),
    ("coordination.k8s.io", "v1", "leases", "Lease", True, (), False, False),
    ("events.k8s.io", "v1", "events", "Event", True, ("ev",), False, False),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ("hpa",), True, False),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", True, (), False, False),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, (), False, False),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, (), False, False),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False, (), False, False),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        ("crd", "crds"),
        True,
        False,
    ),
)

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' version ordering: GA before beta before alpha, higher numbers first (sort ascending)."""
    m = _VERSION_RE.match(version)
    if m is None:
        return (3, 0, 0)
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0))


class Registry:
    """Every served (group, version, plural), looked up by URL or by kind."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for group, version, plural, kind, namespaced, short, status, scale in _BUILTINS:
            self.add(
                ResourceType(
                    group=group,
                    version=version,
                    plural=plural,
                    kind=kind,
                    namespaced=namespaced,
                    short_names=short,
                    status=status,
                    scale=_WORKLOAD_SCALE if scale else None,
                )
            )

    def add(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt

    def remove_crd(self, crd_name: str) -> list[ResourceType]:
        """Unregister every version the CRD declared; returns them."""
        gone = [rt for rt in self._types.values() if rt.crd == crd_name]
        for rt in gone:
            del self._types[(rt.group, rt.version, rt.plural)]
        return gone

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rt in self._types.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        return None

    def by_key(self, key: tuple[str, str]) -> ResourceType | None:
        """Any version of the type stored under ``key`` (the preferred one)."""
        found = [rt for rt in self._types.values() if rt.key == key]
        found.sort(key=lambda rt: version_priority(rt.version))
        return found[0] if found else None

    def all(self) -> list[ResourceType]:
        return list(self._types.values())

    def groups(self) -> dict[str, list[str]]:
        """Group → served versions, preferred first."""
        out: dict[str, set[str]] = {}
        for rt in self._types.values():
            out.setdefault(rt.group, set()).add(rt.version)
        return {g: sorted(vs, key=version_priority) for g, vs in out.items()}

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self._types.values() if rt.group == group and rt.version == version]
