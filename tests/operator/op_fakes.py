"""In-memory doubles for the controller tests: a Kubernetes API, a Restate admin API, fixtures."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import kopf
import pytest
from op_helpers import MINIMAL_CLUSTER
from restate_operator import cluster, common, deployment, names, subscription
from restate_operator.admin_client import AdminClient
from restate_operator.kube import NotFound


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
            return httpx.Response(201, json=_redacted(sub))
        if path.startswith("/subscriptions/"):
            sub_id = path.rsplit("/", 1)[1]
            if method == "DELETE":
                self.subscriptions.pop(sub_id, None)
                return httpx.Response(202)
            sub = self.subscriptions.get(sub_id)
            return httpx.Response(200, json=_redacted(sub)) if sub else httpx.Response(404)
        return httpx.Response(404)


def _redacted(sub: dict[str, Any]) -> dict[str, Any]:
    """Secret options as the server shows them."""
    options = {k: "***" if "password" in k else v for k, v in (sub.get("options") or {}).items()}
    return {**sub, "options": options}


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
