"""Columns of the built-in kinds kubectl users look at most, computed as the real server prints them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .store import JsonObj

Cell = Callable[[JsonObj], Any]


def _status(obj: JsonObj) -> JsonObj:
    status: JsonObj = obj.get("status") or {}
    return status


def _pod_ready(pod: JsonObj) -> str:
    statuses = _status(pod).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(pod: JsonObj) -> str:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    for s in _status(pod).get("containerStatuses") or []:
        waiting = (s.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    return str(_status(pod).get("phase", "Pending"))


def _restarts(pod: JsonObj) -> int:
    return sum(int(s.get("restartCount", 0)) for s in _status(pod).get("containerStatuses") or [])


def _ports(svc: JsonObj) -> str:
    ports = (svc.get("spec") or {}).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _col(name: str, compute: Cell, *, kind: str = "string", priority: int = 0) -> JsonObj:
    return {
        "name": name,
        "type": kind,
        "format": "",
        "description": name,
        "priority": priority,
        "compute": compute,
    }


BUILTIN: dict[tuple[str, str], list[JsonObj]] = {
    ("", "Pod"): [
        _col("Ready", _pod_ready),
        _col("Status", _pod_status),
        _col("Restarts", _restarts, kind="integer"),
        _col("IP", lambda p: _status(p).get("podIP"), priority=1),
        _col("Node", lambda p: (p.get("spec") or {}).get("nodeName"), priority=1),
    ],
    ("apps", "StatefulSet"): [
        _col(
            "Ready",
            lambda s: f"{_status(s).get('readyReplicas', 0)}/{(s.get('spec') or {}).get('replicas', 0)}",
        ),
    ],
    ("apps", "ReplicaSet"): [
        _col("Desired", lambda r: (r.get("spec") or {}).get("replicas", 0), kind="integer"),
        _col("Current", lambda r: _status(r).get("replicas", 0), kind="integer"),
        _col("Ready", lambda r: _status(r).get("readyReplicas", 0), kind="integer"),
    ],
    ("", "Service"): [
        _col("Type", lambda s: (s.get("spec") or {}).get("type")),
        _col("Cluster-IP", lambda s: (s.get("spec") or {}).get("clusterIP")),
        _col("Ports", _ports),
    ],
    ("", "Namespace"): [_col("Status", lambda n: _status(n).get("phase"))],
    ("", "PersistentVolumeClaim"): [
        _col("Status", lambda c: _status(c).get("phase")),
        _col("Capacity", lambda c: (_status(c).get("capacity") or {}).get("storage")),
    ],
}
