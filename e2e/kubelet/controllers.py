"""The StatefulSet and ReplicaSet controllers a real control plane would run.

StatefulSet: pods ``<sts>-0..N-1`` with stable names, ``hostname``/``subdomain`` for per-pod DNS, one
PVC per claim template and ordinal (``<claim>-<sts>-<n>``, kept on scale-down as Kubernetes' default
retention does), ``OrderedReady`` or ``Parallel`` creation, highest-ordinal-first scale-down, and a
rolling update (one pod at a time, highest ordinal first, only while the others are Ready) when the
template's revision hash changes; status ``replicas``, ``readyReplicas``, ``availableReplicas``,
``currentReplicas``, ``updatedReplicas``, ``currentRevision``, ``updateRevision``, ``observedGeneration``.
ReplicaSet: pods ``<rs>-<random>``, scaling both ways (not-ready and newest pods go first), no update of
existing pods on a template change (as Kubernetes); status ``replicas``, ``fullyLabeledReplicas``,
``readyReplicas``, ``availableReplicas``, ``observedGeneration``. Deployments are not handled.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import string
from typing import Any

from .api import PODS, PVCS, REPLICASETS, STATEFULSETS, Api, Res
from .network import is_ready

JsonObj = dict[str, Any]
NODE_NAME = "fakekube-node"


def revision(sts: JsonObj) -> str:
    """``<sts>-<hash>`` of the pod template (the real controller hashes a ControllerRevision)."""
    digest = hashlib.sha256(json.dumps(sts["spec"]["template"], sort_keys=True).encode()).hexdigest()[:10]
    return f"{sts['metadata']['name']}-{digest}"


def owner_ref(owner: JsonObj) -> JsonObj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(obj: JsonObj, owner: JsonObj) -> bool:
    uid = owner["metadata"]["uid"]
    return any(
        r.get("uid") == uid and r.get("controller") for r in obj["metadata"].get("ownerReferences") or []
    )


def pod_from_template(owner: JsonObj, name: str, extra_labels: dict[str, str]) -> JsonObj:
    template = copy.deepcopy(owner["spec"]["template"])
    md = template.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": owner["metadata"]["namespace"],
            "labels": {**(md.get("labels") or {}), **extra_labels},
            "annotations": md.get("annotations") or {},
            "ownerReferences": [owner_ref(owner)],
        },
        "spec": {**template["spec"], "nodeName": NODE_NAME},
    }


def _ordinal(sts: JsonObj, pod: JsonObj) -> int | None:
    prefix = sts["metadata"]["name"] + "-"
    name = pod["metadata"]["name"]
    tail = name[len(prefix) :]
    return int(tail) if name.startswith(prefix) and tail.isdigit() else None


async def _patch_status(api: Api, res: Res, obj: JsonObj, status: JsonObj) -> None:
    current = obj.get("status") or {}
    if any(current.get(k) != v for k, v in status.items()):
        md = obj["metadata"]
        await api.merge_patch(res, md["namespace"], md["name"], {"status": status}, sub="status")


async def reconcile_statefulset(
    api: Api, sts: JsonObj, pods: list[JsonObj], pvcs: set[tuple[str, str]]
) -> None:
    md, spec = sts["metadata"], sts["spec"]
    if md.get("deletionTimestamp"):
        return
    ns, name = md["namespace"], md["name"]
    replicas = int(spec.get("replicas", 1))
    rev = revision(sts)
    mine = {o: p for p in pods if owned_by(p, sts) and (o := _ordinal(sts, p)) is not None}
    alive = {o: p for o, p in mine.items() if not p["metadata"].get("deletionTimestamp")}
    parallel = spec.get("podManagementPolicy") == "Parallel"
    for ordinal in range(replicas):
        if ordinal in mine:
            continue
        if not parallel and not all(is_ready(alive[o]) for o in range(ordinal) if o in alive):
            break
        pod_name = f"{name}-{ordinal}"
        pod = pod_from_template(
            sts,
            pod_name,
            {
                "statefulset.kubernetes.io/pod-name": pod_name,
                "controller-revision-hash": rev,
                "apps.kubernetes.io/pod-index": str(ordinal),
            },
        )
        pod["spec"]["hostname"] = pod_name
        if spec.get("serviceName"):
            pod["spec"]["subdomain"] = spec["serviceName"]
        volumes = pod["spec"].setdefault("volumes", [])
        for claim in spec.get("volumeClaimTemplates") or []:
            claim_name = f"{claim['metadata']['name']}-{pod_name}"
            if (ns, claim_name) not in pvcs:
                pvc: JsonObj = {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {**copy.deepcopy(claim["metadata"]), "name": claim_name, "namespace": ns},
                    "spec": copy.deepcopy(claim.get("spec") or {}),
                }
                pvc["metadata"].setdefault("labels", {}).update(
                    sts["spec"]["selector"].get("matchLabels") or {}
                )
                await api.create(PVCS, ns, pvc)
            volumes.append(
                {"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}}
            )
        await api.create(PODS, ns, pod)
        if not parallel:
            break
    extras = sorted((o for o in alive if o >= replicas), reverse=True)
    for ordinal in extras if parallel else extras[:1]:
        await api.delete(PODS, ns, alive[ordinal]["metadata"]["name"])
    strategy = spec.get("updateStrategy") or {}
    partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0))
    in_range = {o: p for o, p in alive.items() if o < replicas}
    outdated = [
        o
        for o, p in in_range.items()
        if p["metadata"]["labels"].get("controller-revision-hash") != rev and o >= partition
    ]
    settled = len(in_range) == replicas == len(mine) and all(is_ready(p) for p in in_range.values())
    if strategy.get("type", "RollingUpdate") == "RollingUpdate" and outdated and settled:
        await api.delete(PODS, ns, in_range[max(outdated)]["metadata"]["name"])
    updated = sum(1 for p in alive.values() if p["metadata"]["labels"].get("controller-revision-hash") == rev)
    ready = sum(1 for p in alive.values() if is_ready(p))
    current_rev = (sts.get("status") or {}).get("currentRevision") or rev
    if updated == len(alive) == replicas:
        current_rev = rev
    await _patch_status(
        api,
        STATEFULSETS,
        sts,
        {
            "observedGeneration": md.get("generation", 1),
            "replicas": len(alive),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "currentReplicas": len(alive) - updated if current_rev != rev else updated,
            "updatedReplicas": updated,
            "currentRevision": current_rev,
            "updateRevision": rev,
            "collisionCount": 0,
        },
    )


class Expectations:
    """Pods a controller created or deleted that its (lagging) cache does not show yet, per owner uid.

    Without them, a reconcile that runs before the watch delivers its own writes would create (or
    delete) the same replicas twice, exactly the problem the real ReplicaSet controller's
    expectations solve.
    """

    def __init__(self) -> None:
        self.created: dict[str, set[str]] = {}
        self.deleted: dict[str, set[str]] = {}

    def settle(self, owner_uid: str, pods: list[JsonObj]) -> tuple[set[str], set[str]]:
        seen = {p["metadata"]["name"]: p for p in pods}
        created = self.created.setdefault(owner_uid, set())
        created -= set(seen)
        deleted = self.deleted.setdefault(owner_uid, set())
        deleted &= {n for n, p in seen.items() if not p["metadata"].get("deletionTimestamp")}
        return created, deleted


async def reconcile_replicaset(api: Api, rs: JsonObj, pods: list[JsonObj], expect: Expectations) -> None:
    md, spec = rs["metadata"], rs["spec"]
    if md.get("deletionTimestamp"):
        return
    ns = md["namespace"]
    replicas = int(spec.get("replicas", 1))
    mine = [p for p in pods if owned_by(p, rs)]
    created, deleted = expect.settle(md["uid"], mine)
    alive = [
        p for p in mine if not p["metadata"].get("deletionTimestamp") and p["metadata"]["name"] not in deleted
    ]
    for _ in range(replicas - len(alive) - len(created)):
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        pod_name = f"{md['name']}-{suffix}"
        created.add(pod_name)
        await api.create(PODS, ns, pod_from_template(rs, pod_name, {}))
    if len(alive) > replicas:
        victims = sorted(alive, key=lambda p: (is_ready(p), p["metadata"].get("creationTimestamp", "")))
        ordered = [p for p in victims if not is_ready(p)] + sorted(
            (p for p in victims if is_ready(p)),
            key=lambda p: p["metadata"].get("creationTimestamp", ""),
            reverse=True,
        )
        for pod in ordered[: len(alive) - replicas]:
            deleted.add(pod["metadata"]["name"])
            await api.delete(PODS, ns, pod["metadata"]["name"])
    ready = sum(1 for p in alive if is_ready(p))
    await _patch_status(
        api,
        REPLICASETS,
        rs,
        {
            "observedGeneration": md.get("generation", 1),
            "replicas": len(alive),
            "fullyLabeledReplicas": len(alive),
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
    )
