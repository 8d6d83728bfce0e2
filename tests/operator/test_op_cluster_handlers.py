"""The RestateCluster controller per topology, in memory: refusal, the etcd gate, idempotence."""

from __future__ import annotations

import copy
from typing import Any

from op_fakes import FakeKube, Resource, kube, ready_cluster
from op_helpers import FULL_CLUSTER, MINIMAL_CLUSTER, PROVISIONED_CLUSTER, REFUSED_CLUSTER
from restate_operator import cluster

__all__ = ["kube"]  # fixture


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def run(rsc: Resource) -> dict[str, Any]:
    """Reconcile once; the status as it is now (a copy: the next reconcile patches the stored one)."""
    return copy.deepcopy(rsc.run(cluster.reconcile))


def new_cluster(kube: FakeKube, spec: dict[str, Any]) -> Resource:
    return Resource(kube, "restate.dev/v1", "RestateCluster", "demo", None, copy.deepcopy(spec))


def test_refused_cluster_creates_nothing_and_says_what_to_set(kube: FakeKube) -> None:
    rsc = new_cluster(kube, REFUSED_CLUSTER)
    status = run(rsc)
    (ready,) = status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "EtcdRequired")
    assert "spec.cluster.etcd" in ready["message"]
    assert status["observedGeneration"] == 1
    assert set(kube.objects) == {("RestateCluster", None, "demo")}


def test_single_node_asked_for_three_replicas_without_etcd_keeps_running_as_is(kube: FakeKube) -> None:
    rsc = ready_cluster(kube)
    before = copy.deepcopy(kube.objects)
    rsc.update_spec(copy.deepcopy(REFUSED_CLUSTER))
    assert conditions(rsc.run(cluster.reconcile)) == {"Ready": ("False", "EtcdRequired")}
    after = {k: v for k, v in kube.objects.items() if k[0] != "RestateCluster"}
    assert after == {k: v for k, v in before.items() if k[0] != "RestateCluster"}, "nothing changed"


def test_refused_cluster_scales_unrelated_servers_down_to_one(kube: FakeKube) -> None:
    rsc = ready_cluster(kube)
    kube.objects[("StatefulSet", "demo", "restate")]["spec"]["replicas"] = 3  # as an older operator left it
    rsc.update_spec(copy.deepcopy(REFUSED_CLUSTER))
    rsc.run(cluster.reconcile)
    assert kube.objects[("StatefulSet", "demo", "restate")]["spec"]["replicas"] == 1


def test_provisioned_etcd_gates_the_servers_until_it_is_ready(kube: FakeKube) -> None:
    rsc = new_cluster(kube, PROVISIONED_CLUSTER)
    status = run(rsc)
    assert conditions(status)["Ready"] == ("False", "WaitingForEtcd")
    assert conditions(status)["EtcdReady"] == ("False", "PodsNotReady")
    assert "0/3" in status["conditions"][0]["message"]
    for kind, name in (("StatefulSet", "etcd"), ("Service", "etcd"), ("Service", "etcd-client")):
        obj = kube.objects[(kind, "demo", name)]
        assert obj["metadata"]["ownerReferences"][0]["uid"] == rsc.obj["metadata"]["uid"], (kind, name)
    assert kube.get("apps/v1", "StatefulSet", "demo", "restate") is None, "servers wait for etcd"
    assert run(rsc) == status, "waiting is stable"

    kube.set_ready("StatefulSet", "demo", "etcd")
    status = run(rsc)
    assert conditions(status)["EtcdReady"] == ("True", "Reconciled")
    assert conditions(status)["Ready"] == ("False", "PodsNotReady")
    servers = kube.get("apps/v1", "StatefulSet", "demo", "restate")
    assert servers is not None
    assert servers["spec"]["replicas"] == 3

    kube.set_ready("StatefulSet", "demo", "restate")
    status = run(rsc)
    assert conditions(status) == {
        "Ready": ("True", "Reconciled"),
        "StorageValid": ("True", "Applied"),
        "ReplicationFeasible": ("True", "Feasible"),
        "EtcdReady": ("True", "Reconciled"),
    }
    generations = {k: o["metadata"]["generation"] for k, o in kube.objects.items()}
    assert run(rsc) == status
    assert {k: o["metadata"]["generation"] for k, o in kube.objects.items()} == generations, "idempotent"


def test_running_servers_are_kept_when_etcd_falters(kube: FakeKube) -> None:
    rsc = new_cluster(kube, PROVISIONED_CLUSTER)
    rsc.run(cluster.reconcile)
    kube.set_ready("StatefulSet", "demo", "etcd")
    rsc.run(cluster.reconcile)
    kube.set_ready("StatefulSet", "demo", "restate")
    kube.objects[("StatefulSet", "demo", "etcd")]["status"]["readyReplicas"] = 1
    rsc.update_spec({**PROVISIONED_CLUSTER, "config": "[worker]\ninternal-queue-length = 5\n"})
    status = run(rsc)
    assert conditions(status)["Ready"] == ("False", "EtcdNotReady")
    servers = kube.objects[("StatefulSet", "demo", "restate")]
    assert servers["metadata"]["generation"] == 2, "the servers' StatefulSet is still applied"


def test_external_etcd_cluster_starts_servers_at_once(kube: FakeKube) -> None:
    rsc = new_cluster(kube, {**FULL_CLUSTER, "security": {}})
    status = run(rsc)
    assert conditions(status)["EtcdReady"] == ("True", "External")
    assert conditions(status)["Ready"] == ("False", "PodsNotReady")
    assert kube.get("apps/v1", "StatefulSet", "demo", "restate") is not None
    assert kube.get("apps/v1", "StatefulSet", "demo", "etcd") is None


def test_adding_etcd_to_a_refused_cluster_creates_it(kube: FakeKube) -> None:
    rsc = new_cluster(kube, REFUSED_CLUSTER)
    rsc.run(cluster.reconcile)
    rsc.update_spec(copy.deepcopy(PROVISIONED_CLUSTER))
    status = run(rsc)
    assert conditions(status)["Ready"] == ("False", "WaitingForEtcd")
    assert kube.get("apps/v1", "StatefulSet", "demo", "etcd") is not None


def test_single_node_has_no_etcd_condition(kube: FakeKube) -> None:
    rsc = new_cluster(kube, MINIMAL_CLUSTER)
    assert "EtcdReady" not in conditions(rsc.run(cluster.reconcile))
