"""RestateCluster controller: a namespace with a configured, networked StatefulSet of servers.

:func:`reconcile` renders every object from the spec (:func:`restate_operator.render.render_cluster`),
owns it by the RestateCluster and applies it; a config change alters the config hash on the pod template,
which rolls the pods. Storage is the one stateful exception, decided by the pure :func:`plan_storage`:
volumes grow (patch every PVC, then re-create the StatefulSet with ``propagationPolicy: Orphan`` since
its claim template is immutable; pods keep running) and never shrink (the request is refused in status).

The spec's :class:`~restate_operator.models.Topology` decides what runs: one embedded node, a cluster
whose nodes share etcd (the operator's own etcd StatefulSet is applied first, and the servers' is first
created once etcd is ready), or nothing new at all: more than one replica without etcd is refused in
status rather than run as unrelated servers splitting the state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import kopf
from kubernetes.utils import parse_quantity

from restate_operator import common, names
from restate_operator.kube import KubeError
from restate_operator.models import CLUSTER_VERSION, GROUP, ClusterSpec, JsonObject, SpecError, Topology
from restate_operator.render import cluster_labels, render_cluster
from restate_operator.settings import SETTINGS

PLURAL = "restateclusters"
STS = ("apps/v1", "StatefulSet")
PVC = ("v1", "PersistentVolumeClaim")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoragePlan:
    """What to do with the cluster's volumes this reconcile."""

    template_bytes: int
    """Size to render into the StatefulSet's volume claim template."""
    grow: tuple[str, ...] = ()
    """PVCs whose request must be raised to the desired size."""
    recreate_statefulset: bool = False
    """The claim template changes: delete the StatefulSet (orphaning its pods) before applying it."""
    refused: str | None = None
    """Why the desired size was not applied (a shrink)."""


def quantity_bytes(value: str | int | None) -> int | None:
    """A Kubernetes quantity (``10Gi``, ``1073741824``) in bytes."""
    return None if value is None else int(parse_quantity(str(value)))  # type: ignore[no-untyped-call]


def plan_storage(desired: int, template_bytes: int | None, pvcs: Mapping[str, int]) -> StoragePlan:
    """Grow to ``desired``, never shrink below what the template or any volume already has."""
    current = max([b for b in (template_bytes, *pvcs.values()) if b is not None], default=None)
    if current is None:
        return StoragePlan(template_bytes=desired)
    if desired < current:
        return StoragePlan(
            template_bytes=template_bytes or current,
            refused=f"storage.storageRequestBytes {desired} is smaller than the current {current}; "
            "volumes never shrink",
        )
    return StoragePlan(
        template_bytes=desired,
        grow=tuple(sorted(name for name, size in pvcs.items() if size < desired)),
        recreate_statefulset=template_bytes is not None and template_bytes != desired,
    )


class Readiness(NamedTuple):
    """One readiness verdict, as a condition reports it."""

    ready: bool
    reason: str
    message: str


def cluster_readiness(sts: Mapping[str, Any] | None, replicas: int) -> Readiness:
    """Readiness of a StatefulSet from its status."""
    if sts is None:
        return Readiness(False, "StatefulSetMissing", "the StatefulSet does not exist yet")
    status = sts.get("status") or {}
    ready = int(status.get("readyReplicas", 0) or 0)
    observed = status.get("observedGeneration")
    generation = (sts.get("metadata") or {}).get("generation")
    if observed is not None and generation is not None and observed < generation:
        return Readiness(
            False, "StatefulSetUpdating", "the StatefulSet controller has not seen the latest spec"
        )
    if ready < replicas:
        return Readiness(False, "PodsNotReady", f"{ready}/{replicas} pods ready")
    return Readiness(True, "Reconciled", f"{ready}/{replicas} pods ready")


def replication_feasible(spec: ClusterSpec) -> tuple[bool, str]:
    """Whether ``cluster.replication`` copies fit on ``compute.replicas`` nodes (drift users could not see)."""
    wanted = spec.effective_replication
    if wanted > spec.replicas:
        return False, f"replication {wanted} needs at least {wanted} nodes; the cluster has {spec.replicas}"
    return True, f"replication {wanted} on {spec.replicas} node(s)"


def etcd_readiness(spec: ClusterSpec, etcd_sts: Mapping[str, Any] | None) -> Readiness:
    """Readiness of the cluster's etcd: a provisioned one from its StatefulSet, an external one assumed."""
    assert spec.etcd is not None, "only an etcd cluster has an etcd"
    provision = spec.etcd.provision
    if provision is None:
        endpoints = len(spec.etcd.endpoints)
        return Readiness(
            True, "External", f"{endpoints} endpoint(s) from spec.cluster.etcd.endpoints (not probed)"
        )
    members = cluster_readiness(etcd_sts, provision.members)
    return members._replace(message=f"etcd {members.message}")


def servers_wait_for_etcd(etcd_ready: bool, servers_exist: bool) -> bool:
    """Whether to hold back the servers' StatefulSet this reconcile.

    It is first created once etcd is ready (nodes that cannot reach their metadata store only crash-loop);
    once it exists it is always applied, so an etcd hiccup never stops or freezes running nodes.
    """
    return not etcd_ready and not servers_exist


def legacy_scale_down(sts: Mapping[str, Any] | None) -> JsonObject | None:
    """The patch that stops unrelated servers running side by side, or ``None``.

    Only an operator from before clusters could leave several replicas without a metadata client; one
    keeps serving (its volume is ``storage-restate-0``), the others' volumes stay for a later cluster.
    """
    spec = (sts or {}).get("spec") or {}
    if int(spec.get("replicas", 1) or 0) <= 1:
        return None
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    env = {e.get("name") for c in containers for e in c.get("env") or []}
    return None if "RESTATE_METADATA_CLIENT__TYPE" in env else {"spec": {"replicas": 1}}


def _storage_state(spec: ClusterSpec, sts: Mapping[str, Any] | None) -> tuple[int | None, dict[str, int]]:
    template = None
    for claim in ((sts or {}).get("spec") or {}).get("volumeClaimTemplates") or []:
        if claim["metadata"]["name"] == "storage":
            template = quantity_bytes(claim["spec"]["resources"]["requests"]["storage"])
    pvcs = {
        pvc["metadata"]["name"]: quantity_bytes(pvc["spec"]["resources"]["requests"]["storage"]) or 0
        for pvc in common.kube().list(*PVC, spec.name, cluster_labels(spec))
    }
    return template, pvcs


def _adoptable(objects: Iterable[JsonObject], body: kopf.Body) -> list[JsonObject]:
    """Own every object by the cluster; an existing namespace the cluster does not own is used as is."""
    out = []
    for obj in objects:
        if obj["kind"] == "Namespace":
            existing = common.kube().get("v1", "Namespace", None, obj["metadata"]["name"])
            if existing is not None and not common.owned(existing, body.meta["uid"]):
                continue
        obj["metadata"]["ownerReferences"] = [common.owner_reference(body)]
        out.append(obj)
    return out


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def _apply(
    spec: ClusterSpec, storage: StoragePlan, objects: list[JsonObject], *, servers_exist: bool
) -> tuple[dict[tuple[str, str], JsonObject], Readiness | None]:
    """Grow the volumes and apply everything; the servers' StatefulSet last, and only once etcd is ready.

    Returns the applied objects and the etcd readiness (``None`` without etcd).
    """
    for pvc in storage.grow:
        common.kube().patch(
            *PVC,
            spec.name,
            pvc,
            {"spec": {"resources": {"requests": {"storage": str(storage.template_bytes)}}}},
        )
    servers_key = ("StatefulSet", names.STATEFULSET)
    applied = {_key(obj): common.kube().apply(obj) for obj in objects if _key(obj) != servers_key}
    etcd = None
    if spec.etcd is not None:
        etcd = etcd_readiness(spec, applied.get(("StatefulSet", names.ETCD_STATEFULSET)))
        if servers_wait_for_etcd(etcd.ready, servers_exist):
            return applied, etcd
    if storage.recreate_statefulset:
        # Orphan: the pods keep running and the new StatefulSet adopts them. If the API server is still
        # removing the old object when the apply below lands, the next resync re-creates it.
        common.kube().delete(*STS, spec.name, names.STATEFULSET, propagation="Orphan")
    for obj in objects:
        if _key(obj) == servers_key:
            applied[servers_key] = common.kube().apply(obj)
    return applied, etcd


def _refuse(spec: ClusterSpec, servers: Mapping[str, Any] | None, body: kopf.Body, patch: kopf.Patch) -> None:
    """Report a :attr:`Topology.REFUSED` spec; apply nothing of it, stop unrelated servers left running."""
    previous = (body.get("status") or {}).get("conditions")
    scale = legacy_scale_down(servers)
    if scale is not None:
        common.kube().patch(*STS, spec.name, names.STATEFULSET, scale)
        common.event(
            body,
            reason="UnrelatedServersStopped",
            message="scaled to 1 replica until etcd is set",
            warning=True,
        )
    message = spec.refusal()
    if not any(c.get("reason") == "EtcdRequired" for c in previous or []):
        common.event(body, reason="EtcdRequired", message=message, warning=True)
    patch.status["conditions"] = [
        common.condition(
            previous, type_="Ready", status=False, reason="EtcdRequired", message=message, now=common.utcnow()
        )
    ]
    patch.status["observedGeneration"] = body.meta.get("generation")


def _readiness(spec: ClusterSpec, servers: Mapping[str, Any] | None, etcd: Readiness | None) -> Readiness:
    """The Ready condition: etcd first (when there is one), then the servers' pods."""
    if etcd is not None and not etcd.ready:
        if servers is None:
            return Readiness(False, "WaitingForEtcd", f"the servers start once {etcd.message}")
        return Readiness(False, "EtcdNotReady", etcd.message)
    return cluster_readiness(servers, spec.replicas)


def _conditions(
    spec: ClusterSpec,
    storage: StoragePlan,
    ready: Readiness,
    etcd: Readiness | None,
    previous: list[Mapping[str, Any]] | None,
    now: datetime,
) -> list[JsonObject]:
    """Ready first, then StorageValid, ReplicationFeasible and (with etcd) EtcdReady."""
    replication_ok, replication_message = replication_feasible(spec)
    verdicts = {
        "Ready": ready,
        "StorageValid": Readiness(
            storage.refused is None,
            "ShrinkRefused" if storage.refused else "Applied",
            storage.refused or f"{storage.template_bytes} bytes per node",
        ),
        "ReplicationFeasible": Readiness(
            replication_ok, "Feasible" if replication_ok else "NotEnoughNodes", replication_message
        ),
    }
    if etcd is not None:
        verdicts["EtcdReady"] = etcd
    return [
        common.condition(previous, type_=type_, status=v.ready, reason=v.reason, message=v.message, now=now)
        for type_, v in verdicts.items()
    ]


def reconcile(spec_raw: Mapping[str, Any], body: kopf.Body, patch: kopf.Patch) -> None:
    """Render, apply and report one RestateCluster; applying twice changes nothing."""
    now = common.utcnow()
    previous = (body.get("status") or {}).get("conditions")
    generation = body.meta.get("generation")
    try:
        spec = ClusterSpec.parse(body.meta["name"], spec_raw)
        servers = common.kube().get(*STS, spec.name, names.STATEFULSET)
        if spec.topology is Topology.REFUSED:
            _refuse(spec, servers, body, patch)
            return
        storage = plan_storage(spec.storage_request_bytes, *_storage_state(spec, servers))
        objects = _adoptable(render_cluster(spec, SETTINGS, storage_bytes=storage.template_bytes), body)
    except SpecError as exc:
        patch.status["conditions"] = [
            common.condition(
                previous, type_="Ready", status=False, reason="InvalidSpec", message=str(exc), now=now
            )
        ]
        patch.status["observedGeneration"] = generation
        raise kopf.PermanentError(str(exc)) from exc
    try:
        applied, etcd = _apply(spec, storage, objects, servers_exist=servers is not None)
    except KubeError as exc:
        patch.status["conditions"] = [
            common.condition(
                previous, type_="Ready", status=False, reason="FailedReconcile", message=str(exc), now=now
            )
        ]
        raise kopf.TemporaryError(str(exc), delay=SETTINGS.resync_seconds) from exc
    servers = applied.get(("StatefulSet", names.STATEFULSET))
    if storage.refused:
        common.event(body, reason="StorageShrinkRefused", message=storage.refused, warning=True)
    conditions = _conditions(spec, storage, _readiness(spec, servers, etcd), etcd, previous, now)
    patch.status["conditions"] = conditions
    patch.status["observedGeneration"] = generation
    patch.status["readyReplicas"] = int(((servers or {}).get("status") or {}).get("readyReplicas", 0) or 0)


@kopf.on.resume(GROUP, CLUSTER_VERSION, PLURAL)
@kopf.on.create(GROUP, CLUSTER_VERSION, PLURAL)
@kopf.on.update(GROUP, CLUSTER_VERSION, PLURAL, field="spec")
def cluster_changed(spec: kopf.Spec, body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Create, update or resume: reconcile now."""
    reconcile(spec, body, patch)


@kopf.timer(
    GROUP, CLUSTER_VERSION, PLURAL, interval=SETTINGS.resync_seconds, initial_delay=SETTINGS.resync_seconds
)
def cluster_resync(spec: kopf.Spec, body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Periodic reconcile: reports readiness and heals drift."""
    if body.meta.get("deletionTimestamp"):
        return
    reconcile(spec, body, patch)
