"""Controllers end to end in memory: an in-memory API server and a fake admin API, no processes."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import kopf
import pytest
from op_helpers import MINIMAL_CLUSTER, deployment_spec
from restate_operator import cluster, common, deployment, names, subscription
from restate_operator.admin_client import AdminClient
from restate_operator.kube import KubeError, NotFound


def merge(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class FakeKube:
    """Objects by (kind, namespace, name); apply = create-or-merge, like the e2e fake API server."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.uids = (f"uid-{i}" for i in itertools.count())
        self.clock = datetime(2026, 1, 1, tzinfo=UTC)

    def _key(self, kind: str, namespace: str | None, name: str) -> tuple[str, str | None, str]:
        return (kind, namespace, name)

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        obj = self.objects.get(self._key(kind, namespace, name))
        return copy.deepcopy(obj) if obj else None

    def list(
        self, api_version: str, kind: str, namespace: str | None, labels: Mapping[str, str] | None = None
    ):
        return [
            copy.deepcopy(o)
            for (k, ns, _), o in self.objects.items()
            if k == kind
            and ns == namespace
            and all((o["metadata"].get("labels") or {}).get(a) == b for a, b in (labels or {}).items())
        ]

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        key = self._key(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if key in self.objects:
            before = copy.deepcopy(self.objects[key].get("spec"))
            merge(self.objects[key], {k: v for k, v in obj.items() if k != "status"})
            if self.objects[key].get("spec") != before:  # like the API server: only spec changes count
                self.objects[key]["metadata"]["generation"] += 1
        else:
            self.clock += timedelta(seconds=1)
            self.objects[key] = merge(
                copy.deepcopy(dict(obj)),
                {
                    "metadata": {
                        "uid": next(self.uids),
                        "generation": 1,
                        "creationTimestamp": common.rfc3339(self.clock),
                    }
                },
            )
        return copy.deepcopy(self.objects[key])

    def patch(self, api_version: str, kind: str, namespace: str | None, name: str, patch: dict[str, Any]):
        key = self._key(kind, namespace, name)
        if key not in self.objects:
            raise NotFound(404, name)
        before = copy.deepcopy(self.objects[key].get("spec"))
        merge(self.objects[key], patch)
        if self.objects[key].get("spec") != before:
            self.objects[key]["metadata"]["generation"] += 1
        return copy.deepcopy(self.objects[key])

    def delete(
        self, api_version: str, kind: str, namespace: str | None, name: str, *, propagation: str = ""
    ) -> None:
        self.objects.pop(self._key(kind, namespace, name), None)

    def set_ready(self, kind: str, namespace: str, name: str) -> None:
        obj = self.objects[self._key(kind, namespace, name)]
        replicas = obj["spec"]["replicas"]
        obj["status"] = {
            "replicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "observedGeneration": obj["metadata"]["generation"],
        }


class FakeAdmin:
    """Deployments with services, latest per service, pinned counts, subscriptions."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.deployments: dict[str, str] = {}  # id -> uri
        self.latest: str | None = None
        self.pinned: dict[str, int] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.log: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        body = json.loads(request.content) if request.content else {}
        if (method, path) == ("POST", "/deployments"):
            dp = (
                next((i for i, uri in self.deployments.items() if uri == body["uri"]), None)
                or f"dp_{next(self.ids)}"
            )
            self.deployments[dp] = body["uri"]
            self.latest = dp
            self.log.append(f"register {body['uri'].split('/')[2].split('.')[0]} force={body['force']}")
            return httpx.Response(201, json={"id": dp})
        if (method, path) == ("GET", "/deployments"):
            return httpx.Response(
                200,
                json={
                    "deployments": [
                        {"id": i, "uri": u, "services": [{"name": "Greeter"}]}
                        for i, u in self.deployments.items()
                    ]
                },
            )
        if (method, path) == ("GET", "/services"):
            rows = [{"name": "Greeter", "deployment_id": self.latest}] if self.latest else []
            return httpx.Response(200, json={"services": rows})
        if (method, path) == ("POST", "/query"):
            if "pinned_deployment_id AS" in body["query"]:
                return httpx.Response(
                    200, json={"rows": [{"deployment_id": k, "n": v} for k, v in self.pinned.items()]}
                )
            return httpx.Response(200, json={"rows": []})
        if method == "DELETE" and path.startswith("/deployments/"):
            dp = path.rsplit("/", 1)[1]
            self.log.append(f"deregister {dp}")
            self.deployments.pop(dp, None)
            self.latest = self.latest if self.latest != dp else None
            return httpx.Response(202)
        if (method, path) == ("POST", "/subscriptions"):
            sub = {"id": f"sub_{next(self.ids)}", **body}
            self.subscriptions[sub["id"]] = sub
            return httpx.Response(201, json=sub)
        if path.startswith("/subscriptions/"):
            sub_id = path.rsplit("/", 1)[1]
            if method == "DELETE":
                self.subscriptions.pop(sub_id, None)
                return httpx.Response(202)
            sub = self.subscriptions.get(sub_id)
            return httpx.Response(200, json=sub) if sub else httpx.Response(404)
        return httpx.Response(404)


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    fake = FakeKube()
    monkeypatch.setattr(common, "kube", lambda: fake)
    return fake


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> FakeAdmin:
    fake = FakeAdmin()

    def factory(url: str, **_: Any) -> AdminClient:
        return AdminClient(url, transport=httpx.MockTransport(fake.handle))

    monkeypatch.setattr(deployment, "AdminClient", factory)
    monkeypatch.setattr(subscription, "AdminClient", factory)
    return fake


class Resource:
    """A custom resource stored in the fake API server, driven through a handler like kopf would."""

    def __init__(
        self, kube: FakeKube, api_version: str, kind: str, name: str, namespace: str | None, spec: dict
    ):
        self.kube = kube
        self.obj = kube.apply(
            {
                "apiVersion": api_version,
                "kind": kind,
                "metadata": {"name": name, "namespace": namespace},
                "spec": spec,
            }
        )
        self.key = (kind, namespace, name)

    def run(self, handler: Any) -> dict[str, Any]:
        obj = self.kube.objects[self.key]
        patch = kopf.Patch()
        try:
            handler(obj["spec"], kopf.Body(copy.deepcopy(obj)), patch)
        finally:
            merge(obj.setdefault("status", {}), dict(patch.get("status") or {}))
        return obj["status"]

    def update_spec(self, spec: dict[str, Any]) -> None:
        self.kube.objects[self.key]["spec"] = spec
        self.kube.objects[self.key]["metadata"]["generation"] += 1


def ready_cluster(kube: FakeKube) -> Resource:
    rsc = Resource(kube, "restate.dev/v1", "RestateCluster", "demo", None, copy.deepcopy(MINIMAL_CLUSTER))
    rsc.run(cluster.reconcile)
    kube.set_ready("StatefulSet", "demo", "restate")
    assert rsc.run(cluster.reconcile)["conditions"][0]["status"] == "True"
    return rsc


def replicasets(kube: FakeKube) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in kube.list("apps/v1", "ReplicaSet", "default")}


def current_rs(kube: FakeKube) -> str:
    return next(n for n, o in replicasets(kube).items() if o["metadata"]["labels"][names.LATEST] == "true")


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
