"""Controllers end to end in memory: an in-memory API server and a fake admin API, no processes."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest
from op_fakes import FakeAdmin, FakeKube, Resource, admin, current_rs, kube, ready_cluster, replicasets
from op_helpers import MINIMAL_CLUSTER, deployment_spec
from restate_operator import cluster, common, deployment, names, subscription
from restate_operator.kube import KubeError

__all__ = ["admin", "kube"]  # fixtures


def test_cluster_reconcile_creates_owned_objects_and_reports_ready(kube: FakeKube) -> None:
    rsc = Resource(kube, "restate.dev/v1", "RestateCluster", "demo", None, copy.deepcopy(MINIMAL_CLUSTER))
    status = rsc.run(cluster.reconcile)
    assert status["conditions"][0]["reason"] == "PodsNotReady"
    assert status["observedGeneration"] == 1
    sts = kube.get("apps/v1", "StatefulSet", "demo", "restate")
    assert sts is not None
    assert sts["metadata"]["ownerReferences"][0]["uid"] == rsc.obj["metadata"]["uid"]
    kube.set_ready("StatefulSet", "demo", "restate")
    assert rsc.run(cluster.reconcile)["conditions"][0]["reason"] == "Reconciled"


def test_cluster_reconcile_refuses_shrink_and_grows_claims(kube: FakeKube) -> None:
    rsc = ready_cluster(kube)
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": "storage-restate-0",
                "namespace": "demo",
                "labels": {names.APP_NAME: "restate", names.CLUSTER_LABEL: "demo"},
            },
            "spec": {"resources": {"requests": {"storage": "2Gi"}}},
        }
    )
    rsc.update_spec({**MINIMAL_CLUSTER, "storage": {"storageRequestBytes": 2**20}})
    status = rsc.run(cluster.reconcile)
    assert status["conditions"][1]["reason"] == "ShrinkRefused"
    rsc.update_spec({**MINIMAL_CLUSTER, "storage": {"storageRequestBytes": 4 * 2**30}})
    status = rsc.run(cluster.reconcile)
    assert status["conditions"][1]["status"] == "True"
    pvc = kube.get("v1", "PersistentVolumeClaim", "demo", "storage-restate-0")
    assert pvc is not None
    assert pvc["spec"]["resources"]["requests"]["storage"] == str(4 * 2**30)
    sts = kube.get("apps/v1", "StatefulSet", "demo", "restate")
    assert sts is not None
    assert sts["metadata"]["generation"] == 1  # re-created (orphaning the pods), not patched


def test_deployment_waits_for_its_cluster(kube: FakeKube, admin: FakeAdmin) -> None:
    rsd = Resource(kube, "restate.dev/v1beta1", "RestateDeployment", "greeter", "default", deployment_spec())
    with pytest.raises(kopf.TemporaryError, match="RestateCluster demo"):
        rsd.run(deployment.reconcile)
    assert list(replicasets(kube))  # the version exists already; it is just not registered
    assert not admin.log


def test_deployment_rollout_drain_retire_and_rollback(
    kube: FakeKube, admin: FakeAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready_cluster(kube)
    now = [datetime(2026, 6, 1, tzinfo=UTC)]
    monkeypatch.setattr(common, "utcnow", lambda: now[0])
    rsd = Resource(
        kube,
        "restate.dev/v1beta1",
        "RestateDeployment",
        "greeter",
        "default",
        deployment_spec(drainDelaySeconds=60),
    )
    status = rsd.run(deployment.reconcile)
    first = current_rs(kube)
    assert status["conditions"][0]["reason"] == "NotReady"
    assert not admin.log  # not ready: not registered
    kube.set_ready("ReplicaSet", "default", first)
    status = rsd.run(deployment.reconcile)
    assert admin.log == [f"register {first} force=False"]
    assert status["deploymentId"] == "dp_1"
    assert status["labelSelector"] == f"app=greeter,pod-template-hash={first.rsplit('-', 1)[1]}"
    service = kube.get("v1", "Service", "default", first)
    assert service is not None
    assert service["metadata"]["annotations"][names.DEPLOYMENT_ID] == "dp_1"

    # a template change: a second version, registered once ready; the first stays while pinned
    rsd.update_spec(deployment_spec(image="ghcr.io/example/greeter:2", drainDelaySeconds=60))
    admin.pinned["dp_1"] = 1
    rsd.run(deployment.reconcile)
    second = current_rs(kube)
    assert second != first
    kube.set_ready("ReplicaSet", "default", second)
    status = rsd.run(deployment.reconcile)
    assert admin.log[-1] == f"register {second} force=False"
    assert {v["name"]: v["step"] for v in status["versions"]} == {second: "keep", first: "keep"}

    # the pinned invocation finishes: drain, then retire after drainDelaySeconds
    admin.pinned.clear()
    status = rsd.run(deployment.reconcile)
    assert {v["name"]: v["step"] for v in status["versions"]}[first] == "schedule-drain"
    assert (
        replicasets(kube)[first]["metadata"]["annotations"][names.REMOVE_VERSION_AT] == "2026-06-01T00:01:00Z"
    )
    now[0] += timedelta(seconds=61)
    status = rsd.run(deployment.reconcile)
    assert admin.log[-1] == "deregister dp_1"
    assert {v["name"]: (v["step"], v["deploymentId"]) for v in status["versions"]}[first] == ("retire", None)
    old = replicasets(kube)[first]
    assert old["spec"]["replicas"] == 0
    assert names.DEPLOYMENT_ID not in old["metadata"]["annotations"]

    # rollback to the first template: the retired version scales up and registers again
    rsd.update_spec(deployment_spec(drainDelaySeconds=60))
    rsd.run(deployment.reconcile)
    assert current_rs(kube) == first
    assert replicasets(kube)[first]["spec"]["replicas"] == 2
    kube.set_ready("ReplicaSet", "default", first)
    status = rsd.run(deployment.reconcile)
    assert admin.log[-1] == f"register {first} force=False"
    assert status["deploymentId"] == admin.latest


def test_deployment_rollback_to_live_version_forces_registration(kube: FakeKube, admin: FakeAdmin) -> None:
    ready_cluster(kube)
    rsd = Resource(kube, "restate.dev/v1beta1", "RestateDeployment", "greeter", "default", deployment_spec())
    rsd.run(deployment.reconcile)
    first = current_rs(kube)
    kube.set_ready("ReplicaSet", "default", first)
    rsd.run(deployment.reconcile)
    rsd.update_spec(deployment_spec(image="ghcr.io/example/greeter:2"))
    rsd.run(deployment.reconcile)
    kube.set_ready("ReplicaSet", "default", current_rs(kube))
    rsd.run(deployment.reconcile)
    rsd.update_spec(deployment_spec())  # back while the first is still draining (300 s)
    rsd.run(deployment.reconcile)
    kube.set_ready(
        "ReplicaSet", "default", first
    )  # the ReplicaSet controller observes the relabelled template
    rsd.run(deployment.reconcile)
    assert admin.log[-1] == f"register {first} force=True"
    assert admin.latest == "dp_1"


def test_deployment_history_limit_deletes_old_retired_versions(kube: FakeKube, admin: FakeAdmin) -> None:
    ready_cluster(kube)
    rsd = Resource(
        kube,
        "restate.dev/v1beta1",
        "RestateDeployment",
        "greeter",
        "default",
        {**deployment_spec(drainDelaySeconds=0), "revisionHistoryLimit": 1},
    )
    for tag in range(4):
        rsd.update_spec(
            {**deployment_spec(image=f"img:{tag}", drainDelaySeconds=0), "revisionHistoryLimit": 1}
        )
        rsd.run(deployment.reconcile)
        kube.set_ready("ReplicaSet", "default", current_rs(kube))
        for _ in range(3):
            rsd.run(deployment.reconcile)
    assert len(replicasets(kube)) == 2  # the current one and one retired for rollback
    assert len(admin.deployments) == 1


def test_deployment_deletion_waits_for_pinned_work_then_releases(kube: FakeKube, admin: FakeAdmin) -> None:
    ready_cluster(kube)
    rsd = Resource(kube, "restate.dev/v1beta1", "RestateDeployment", "greeter", "default", deployment_spec())
    rsd.run(deployment.reconcile)
    kube.set_ready("ReplicaSet", "default", current_rs(kube))
    rsd.run(deployment.reconcile)
    kube.objects[rsd.key]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    admin.pinned["dp_1"] = 1
    with pytest.raises(kopf.TemporaryError, match="pinned"):
        rsd.run(deployment.finalize)
    admin.pinned.clear()
    rsd.run(deployment.finalize)
    assert admin.log[-1] == "deregister dp_1"
    assert not admin.deployments


def test_deployment_invalid_spec_is_permanent(kube: FakeKube) -> None:
    rsd = Resource(
        kube,
        "restate.dev/v1beta1",
        "RestateDeployment",
        "bad",
        "default",
        {**deployment_spec(), "deploymentMode": "knative"},
    )
    with pytest.raises(kopf.PermanentError):
        rsd.run(deployment.reconcile)
    assert kube.objects[rsd.key]["status"]["conditions"][0]["reason"] == "InvalidSpec"
    rsd.run(deployment.finalize)  # an invalid resource never blocks its own deletion


def subscription_resource(kube: FakeKube) -> Resource:
    return Resource(
        kube,
        "restate.dev/v1alpha1",
        "Subscription",
        "orders",
        "default",
        {
            "cluster": "demo",
            "source": "kafka://k/orders",
            "sink": "service://Greeter/greet",
            "options": {"group.id": "g"},
        },
    )


def test_subscription_created_recreated_and_deleted(kube: FakeKube, admin: FakeAdmin) -> None:
    ready_cluster(kube)
    sub = subscription_resource(kube)
    status = sub.run(subscription.reconcile)
    first = status["subscriptionId"]
    assert admin.subscriptions[first]["sink"] == "service://Greeter/greet"
    assert sub.run(subscription.reconcile)["subscriptionId"] == first  # idempotent
    admin.subscriptions.clear()  # deleted behind the operator's back
    second = sub.run(subscription.reconcile)["subscriptionId"]
    assert second != first
    assert second in admin.subscriptions
    obj = kube.objects[sub.key]
    subscription.subscription_deleted(spec=obj["spec"], body=kopf.Body(copy.deepcopy(obj)))
    assert not admin.subscriptions


def test_subscription_with_a_secret_is_stable_and_follows_secret_changes(
    kube: FakeKube, admin: FakeAdmin
) -> None:
    ready_cluster(kube)
    sub = subscription_resource(kube)
    spec = kube.objects[sub.key]["spec"]
    sub.update_spec({**spec, "options": {**spec["options"], "sasl.password": "one"}})
    first = sub.run(subscription.reconcile)["subscriptionId"]
    assert sub.run(subscription.reconcile)["subscriptionId"] == first  # "***" on the server is not a change
    sub.update_spec({**spec, "options": {**spec["options"], "sasl.password": "two"}})
    second = sub.run(subscription.reconcile)["subscriptionId"]
    assert second != first
    assert admin.subscriptions[second]["options"]["sasl.password"] == "two"
    assert list(admin.subscriptions) == [second]


def test_subscription_waits_for_cluster(kube: FakeKube, admin: FakeAdmin) -> None:
    with pytest.raises(kopf.TemporaryError):
        subscription_resource(kube).run(subscription.reconcile)


@pytest.fixture(autouse=True)
def _no_real_clients() -> Iterator[None]:
    common.kube.cache_clear()
    yield
    common.kube.cache_clear()


def test_deployment_older_versions_get_an_autoscaler_until_retired(kube: FakeKube, admin: FakeAdmin) -> None:
    ready_cluster(kube)
    autoscaling = {"maxReplicas": 4}
    rsd = Resource(
        kube,
        "restate.dev/v1beta1",
        "RestateDeployment",
        "greeter",
        "default",
        {**deployment_spec(drainDelaySeconds=0), "autoscaling": autoscaling},
    )
    rsd.run(deployment.reconcile)
    first = current_rs(kube)
    kube.set_ready("ReplicaSet", "default", first)
    rsd.run(deployment.reconcile)
    assert kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "default", first) is None  # latest: none
    rsd.update_spec({**deployment_spec(image="img:2", drainDelaySeconds=0), "autoscaling": autoscaling})
    admin.pinned["dp_1"] = 1
    rsd.run(deployment.reconcile)
    kube.set_ready("ReplicaSet", "default", current_rs(kube))
    rsd.run(deployment.reconcile)
    hpa = kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "default", first)
    assert hpa is not None
    assert hpa["spec"]["scaleTargetRef"]["name"] == first
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    admin.pinned.clear()
    for _ in range(3):
        rsd.run(deployment.reconcile)
    assert kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "default", first) is None
    assert replicasets(kube)[first]["spec"]["replicas"] == 0


def test_cluster_api_errors_are_reported_and_retried(kube: FakeKube, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(obj: Mapping[str, Any]) -> dict[str, Any]:
        raise KubeError(422, "StatefulSet.apps is invalid")

    monkeypatch.setattr(kube, "apply", refuse)
    rsc = Resource.__new__(Resource)
    rsc.kube, rsc.key = kube, ("RestateCluster", None, "demo")
    kube.objects[rsc.key] = {
        "apiVersion": "restate.dev/v1",
        "kind": "RestateCluster",
        "metadata": {"name": "demo", "uid": "u", "generation": 1},
        "spec": copy.deepcopy(MINIMAL_CLUSTER),
    }
    with pytest.raises(kopf.TemporaryError, match="invalid"):
        rsc.run(cluster.reconcile)
    assert kube.objects[rsc.key]["status"]["conditions"][0]["reason"] == "FailedReconcile"
