"""The ``/scale`` subresource: an ``autoscaling/v1`` Scale view of a workload or a custom resource."""

from __future__ import annotations

import copy
from typing import Any

from . import errors, patching
from .objects import Objects
from .resources import ResourceType, ScalePaths
from .selectors import dotted, selector_from_label_selector
from .store import JsonObj, meta


def _paths(rt: ResourceType) -> ScalePaths:
    if rt.scale is None:
        raise errors.not_found(f"{rt.qualified}/scale", "")
    return rt.scale


def scale_of(rt: ResourceType, obj: JsonObj) -> JsonObj:
    paths = _paths(rt)
    md = meta(obj)
    if paths.label_selector is not None:
        selector = dotted(obj, paths.label_selector) or ""
    else:
        selector = selector_from_label_selector((obj.get("spec") or {}).get("selector"))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md
        },
        "spec": {"replicas": dotted(obj, paths.spec_replicas) or 0},
        "status": {"replicas": dotted(obj, paths.status_replicas) or 0, "selector": selector},
    }


def _set(obj: JsonObj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value


def write_scale(objects: Objects, rt: ResourceType, namespace: str, name: str, scale: JsonObj) -> JsonObj:
    """Write a Scale's ``spec.replicas`` back to its object; a stale resourceVersion is a conflict."""
    obj = objects.get(rt, namespace, name)
    want = meta(scale).get("resourceVersion")
    if want and want != meta(obj)["resourceVersion"]:
        raise errors.conflict(rt.qualified, name, "the object has been modified")
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise errors.invalid("Scale", name, "spec.replicas: must be a non-negative integer")
    new = copy.deepcopy(obj)
    _set(new, _paths(rt).spec_replicas, replicas)
    return scale_of(rt, objects.update(rt, namespace, name, new, sub=None))


def patch_scale(
    objects: Objects, rt: ResourceType, namespace: str, name: str, content_type: str, patch: Any
) -> JsonObj:
    current = scale_of(rt, objects.get(rt, namespace, name))
    if content_type == "application/json-patch+json":
        new = patching.json_patch(current, patch)
    elif content_type == "application/strategic-merge-patch+json":
        new = patching.strategic_merge(current, patch)
    else:
        new = patching.merge_patch(current, patch)
    return write_scale(objects, rt, namespace, name, new)
