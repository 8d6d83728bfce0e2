"""Per-kind behaviour of writes: defaults the real API server (or an instant controller) would set.

* custom resources: defaulting, pruning and validation from the CRD's structural schema (of CEL, only
  the ``self == oldSelf`` immutability rule);
* Service: ``type``, a ``clusterIP`` from the server's loopback service range, port defaults;
* Pod: ``phase: Pending``; workloads: ``replicas: 1`` and StatefulSet strategy defaults;
* PersistentVolumeClaim: bound at once, with the requested capacity (a provisioner that never waits);
* Namespace: ``phase: Active``; CustomResourceDefinition: established at once, its types served.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import TYPE_CHECKING

from . import crd, errors, schema
from .resources import ResourceType
from .store import JsonObj, meta

if TYPE_CHECKING:
    from .objects import Objects


def _custom(rt: ResourceType, obj: JsonObj, old: JsonObj | None = None) -> JsonObj:
    if rt.schema is None:
        return obj
    out: JsonObj = schema.default_and_prune(obj, rt.schema, root=True)
    problems = schema.validate({k: v for k, v in out.items() if k != "status"}, rt.schema)
    problems += schema.immutability(old, out, rt.schema)
    if problems:
        raise errors.invalid(rt.kind, meta(obj).get("name", ""), "; ".join(problems), problems)
    return out


def _allocate_cluster_ip(objects: Objects) -> str:
    used = {(svc.get("spec") or {}).get("clusterIP") for svc in objects.store.objects_of(("", "services"))}
    for n in range(2, 65_000):
        ip = str(ipaddress.ip_address(objects.service_prefix) + n)
        if ip not in used:
            return ip
    raise errors.ApiError(500, "InternalError", "the service IP range is exhausted")


def _service(objects: Objects, obj: JsonObj, old: JsonObj | None) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    old_ip = ((old or {}).get("spec") or {}).get("clusterIP")
    if old_ip:
        spec["clusterIP"] = old_ip
    elif not spec.get("clusterIP"):
        spec["clusterIP"] = _allocate_cluster_ip(objects)
    spec["clusterIPs"] = [spec["clusterIP"]]
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))


def _workload(rt: ResourceType, obj: JsonObj, *, creating: bool) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    if rt.kind == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    if creating:
        obj["status"] = {"replicas": 0, "availableReplicas": 0}


def on_create(objects: Objects, rt: ResourceType, obj: JsonObj) -> JsonObj:
    if rt.crd is not None:
        return _custom(rt, obj)
    kind = (rt.group, rt.kind)
    if kind == ("", "Service"):
        _service(objects, obj, None)
    elif kind == ("", "Pod"):
        obj.setdefault("spec", {}).setdefault("restartPolicy", "Always")
        obj["status"] = {"phase": "Pending"}
    elif kind in (("apps", "StatefulSet"), ("apps", "ReplicaSet"), ("apps", "Deployment")):
        _workload(rt, obj, creating=True)
    elif kind == ("", "PersistentVolumeClaim"):
        requested = ((obj.get("spec") or {}).get("resources") or {}).get("requests") or {}
        obj["status"] = {
            "phase": "Bound",
            "capacity": dict(requested),
            "accessModes": obj["spec"].get("accessModes", []),
        }
    elif kind == ("", "Namespace"):
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
    elif kind == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        crd.check(objects.registry, obj)
        obj["status"] = crd.established_status(obj)
    return obj


def on_update(objects: Objects, rt: ResourceType, old: JsonObj, new: JsonObj, *, sub: str | None) -> JsonObj:
    if rt.crd is not None:
        return _custom(rt, new, old)
    kind = (rt.group, rt.kind)
    if kind == ("", "Service") and sub is None:
        _service(objects, new, old)
    elif kind in (("apps", "StatefulSet"), ("apps", "ReplicaSet"), ("apps", "Deployment")) and sub is None:
        _workload(rt, new, creating=False)
    elif kind == ("apiextensions.k8s.io", "CustomResourceDefinition") and sub is None:
        crd.check(objects.registry, new)
        new["status"] = crd.established_status(new)
    elif kind == ("", "PersistentVolumeClaim") and sub is None:
        requested = ((new.get("spec") or {}).get("resources") or {}).get("requests") or {}
        new.setdefault("status", {})["capacity"] = dict(requested)
    return copy.deepcopy(new)


def after_write(objects: Objects, rt: ResourceType, old: JsonObj | None, new: JsonObj) -> None:
    if (rt.group, rt.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        crd.register(objects.registry, new)


def after_remove(objects: Objects, rt: ResourceType, gone: JsonObj) -> None:
    if (rt.group, rt.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        for served in objects.registry.remove_crd(meta(gone)["name"]):
            for obj in objects.store.objects_of(served.key):
                objects.store.remove(served.key, obj)
