"""RestateCluster storage planning (grow, never shrink) and readiness, as pure functions."""

from __future__ import annotations

import pytest
from op_helpers import MINIMAL_CLUSTER
from restate_operator.cluster import cluster_readiness, plan_storage, quantity_bytes, replication_feasible
from restate_operator.models import ClusterSpec

GI = 2**30


def test_first_reconcile_uses_the_desired_size() -> None:
    plan = plan_storage(10 * GI, None, {})
    assert plan.template_bytes == 10 * GI
    assert not plan.grow
    assert not plan.recreate_statefulset
    assert plan.refused is None


def test_unchanged_size_does_nothing() -> None:
    plan = plan_storage(10 * GI, 10 * GI, {"storage-restate-0": 10 * GI})
    assert (plan.grow, plan.recreate_statefulset, plan.refused) == ((), False, None)


def test_growth_patches_every_smaller_claim_and_recreates_the_statefulset() -> None:
    plan = plan_storage(20 * GI, 10 * GI, {"storage-restate-0": 10 * GI, "storage-restate-1": 20 * GI})
    assert plan.template_bytes == 20 * GI
    assert plan.grow == ("storage-restate-0",)
    assert plan.recreate_statefulset


def test_shrink_is_refused_and_the_current_template_kept() -> None:
    plan = plan_storage(5 * GI, 10 * GI, {"storage-restate-0": 10 * GI})
    assert plan.template_bytes == 10 * GI
    assert plan.grow == ()
    assert not plan.recreate_statefulset
    assert plan.refused is not None
    assert "never shrink" in plan.refused


def test_shrink_below_a_grown_claim_is_refused_even_if_the_template_is_small() -> None:
    plan = plan_storage(10 * GI, 10 * GI, {"storage-restate-0": 15 * GI})
    assert plan.refused is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("10Gi", 10 * GI), ("1073741824", GI), (512, 512), ("1G", 10**9)],
    ids=["Gi", "plain", "int", "G"],
)
def test_quantities_are_bytes(value: str | int, expected: int) -> None:
    assert quantity_bytes(value) == expected


@pytest.mark.parametrize(
    ("sts", "replicas", "ready", "reason"),
    [
        (None, 1, False, "StatefulSetMissing"),
        (
            {"metadata": {"generation": 2}, "status": {"observedGeneration": 1, "readyReplicas": 1}},
            1,
            False,
            "StatefulSetUpdating",
        ),
        (
            {"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "readyReplicas": 1}},
            3,
            False,
            "PodsNotReady",
        ),
        (
            {"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "readyReplicas": 3}},
            3,
            True,
            "Reconciled",
        ),
        ({"metadata": {}, "status": {}}, 0, True, "Reconciled"),
    ],
    ids=["missing", "updating", "not-ready", "ready", "scaled-to-zero"],
)
def test_cluster_readiness_from_statefulset(
    sts: dict | None, replicas: int, ready: bool, reason: str
) -> None:
    assert cluster_readiness(sts, replicas)[:2] == (ready, reason)


@pytest.mark.parametrize(
    ("replicas", "replication", "feasible"),
    [(1, None, True), (3, 2, True), (3, 3, True), (1, 2, False)],
    ids=["default", "fewer-copies", "equal", "too-many-copies"],
)
def test_replication_must_fit_on_the_nodes(replicas: int, replication: int | None, feasible: bool) -> None:
    spec = {**MINIMAL_CLUSTER, "compute": {"image": "x", "replicas": replicas}}
    if replication:
        spec["cluster"] = {"replication": replication}
    assert replication_feasible(ClusterSpec.parse("demo", spec))[0] is feasible
