"""Helpers shared by the three controllers: the client singletons, conditions, owner references, addresses.

Kept apart from the handler modules so those stay declarative: each handler parses, renders, applies and
reports, and everything it needs for that which is not specific to its resource lives here.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import kopf

from restate_operator import names
from restate_operator.kube import Kube
from restate_operator.models import CLUSTER_VERSION, GROUP, JsonObject
from restate_operator.settings import SETTINGS, OperatorSettings


@functools.cache
def kube() -> Kube:
    """The process-wide Kubernetes client (configured by the startup handler)."""
    return Kube(field_manager=SETTINGS.field_manager)


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp as Kubernetes writes it, or ``None``."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def condition(
    previous: Sequence[Mapping[str, Any]] | None,
    *,
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    now: datetime,
) -> JsonObject:
    """A condition; ``lastTransitionTime`` moves only when the status changes."""
    value = "Unknown" if status is None else ("True" if status else "False")
    old = next((c for c in previous or [] if c.get("type") == type_), None)
    since = old.get("lastTransitionTime") if old and old.get("status") == value else None
    return {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since or rfc3339(now),
    }


def event(body: kopf.Body, *, reason: str, message: str, warning: bool = False) -> None:
    """Post a Kubernetes Event on ``body`` (for ``kubectl describe``); a no-op outside a running operator."""
    post = kopf.warn if warning else kopf.info
    with contextlib.suppress(LookupError):  # kopf's event poster only exists inside the operator
        post(body, reason=reason, message=message)


def is_ready(obj: Mapping[str, Any] | None) -> bool:
    """Whether a custom resource reports ``Ready=True``."""
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def owner_reference(owner: Mapping[str, Any], *, controller: bool = True) -> JsonObject:
    """An ownerReference to ``owner`` (any object with apiVersion, kind, name and uid)."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def owned(obj: Mapping[str, Any], owner_uid: str) -> bool:
    """Whether ``obj`` has an ownerReference to the object with ``owner_uid``."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner_uid for ref in refs)


def ready_pod_ip(namespace: str, labels: Mapping[str, str]) -> str:
    """The IP of a ready pod matching ``labels`` ('' if none yet)."""
    for pod in kube().list("v1", "Pod", namespace, labels):
        status = pod.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        if status.get("podIP") and (ready or status.get("phase") == "Running"):
            return str(status["podIP"])
    return ""


def cluster_admin_url(cluster: str, settings: OperatorSettings = SETTINGS) -> str:
    """The admin API URL of a RestateCluster, from ``RESTATE_OPERATOR_ADMIN_URL_TEMPLATE``."""
    template = settings.admin_url_template
    pod_ip = ""
    if "{pod_ip}" in template:
        pod_ip = ready_pod_ip(
            cluster, {names.CLUSTER_LABEL: cluster, "statefulset.kubernetes.io/pod-name": "restate-0"}
        )
        if not pod_ip:
            pod_ip = ready_pod_ip(cluster, {names.CLUSTER_LABEL: cluster})
    return template.format(cluster=cluster, namespace=cluster, dns=settings.cluster_dns, pod_ip=pod_ip)


def get_cluster(cluster: str) -> JsonObject | None:
    """The RestateCluster object, or ``None``."""
    return kube().get(f"{GROUP}/{CLUSTER_VERSION}", "RestateCluster", None, cluster)
