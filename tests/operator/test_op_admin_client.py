"""The admin API client against a mock transport speaking the server's documented endpoints."""

from __future__ import annotations

import json

import httpx
import pytest
from restate_operator.admin_client import PINNED_QUERY, AdminClient, AdminError


class FakeAdmin:
    """Just enough of the admin API: deployments, services, /query, subscriptions."""

    def __init__(self, *, query_status: int = 200) -> None:
        self.deployments: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.query_status = query_status
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path, method = request.url.path, request.method
        if (method, path) == ("POST", "/deployments"):
            body = json.loads(request.content)
            dp = f"dp_{len(self.deployments) + 1}"
            self.deployments[dp] = {
                "id": dp,
                "uri": body["uri"],
                "services": [{"name": "Greeter", "revision": 1}],
            }
            return httpx.Response(201, json={"id": dp})
        if (method, path) == ("GET", "/deployments"):
            return httpx.Response(200, json={"deployments": list(self.deployments.values())})
        if (method, path) == ("GET", "/services"):
            latest = max(self.deployments) if self.deployments else None
            return httpx.Response(
                200, json={"services": [{"name": "Greeter", "deployment_id": latest, "revision": 1}]}
            )
        if method == "DELETE" and path.startswith("/deployments/"):
            return httpx.Response(202 if self.deployments.pop(path.rsplit("/", 1)[1], None) else 404)
        if (method, path) == ("POST", "/query"):
            if self.query_status != 200:
                return httpx.Response(self.query_status, json={"message": "no"})
            sql = json.loads(request.content)["query"]
            rows = (
                [{"deployment_id": "dp_1", "n": 2}]
                if sql == PINNED_QUERY
                else [{"service": "Greeter", "n": 1}]
            )
            return httpx.Response(200, json={"rows": rows})
        if (method, path) == ("POST", "/subscriptions"):
            sub = {"id": f"sub_{len(self.subscriptions) + 1}", **json.loads(request.content)}
            self.subscriptions[sub["id"]] = sub
            return httpx.Response(201, json=sub)
        if path.startswith("/subscriptions/"):
            sub_id = path.rsplit("/", 1)[1]
            if method == "GET":
                sub = self.subscriptions.get(sub_id)
                return httpx.Response(200, json=sub) if sub else httpx.Response(404)
            return httpx.Response(202 if self.subscriptions.pop(sub_id, None) else 404)
        return httpx.Response(404)

    def client(self) -> AdminClient:
        return AdminClient("http://admin:9070/", transport=httpx.MockTransport(self.handle))


def test_register_sends_upstream_body_and_returns_id() -> None:
    fake = FakeAdmin()
    with fake.client() as admin:
        assert admin.register("http://greeter:9080/", use_http11=True, force=True) == "dp_1"
    assert json.loads(fake.requests[0].content) == {
        "uri": "http://greeter:9080/",
        "use_http_11": True,
        "force": True,
    }


def test_deregister_forces_and_tolerates_unknown_ids() -> None:
    fake = FakeAdmin()
    with fake.client() as admin:
        dp = admin.register("http://a")
        admin.deregister(dp)
        admin.deregister(dp)  # 404: already gone
    assert fake.requests[1].url.params["force"] == "true"
    assert not fake.deployments


def test_view_combines_deployments_latest_and_invocations() -> None:
    fake = FakeAdmin()
    with fake.client() as admin:
        admin.register("http://a")
        view = admin.view()
    assert view.deployments["dp_1"].services == frozenset({"Greeter"})
    assert view.latest_for == {"Greeter": "dp_1"}
    assert view.latest_ids == frozenset({"dp_1"})
    assert view.invocations is not None
    assert view.invocations.pinned == {"dp_1": 2}
    assert view.invocations.unpinned == {"Greeter": 1}
    query = next(r for r in fake.requests if r.url.path == "/query")
    assert query.headers["accept"] == "application/json"


@pytest.mark.parametrize("status", [404, 500], ids=["no-query-endpoint", "query-error"])
def test_query_failure_means_unknown_invocations(status: int) -> None:
    with FakeAdmin(query_status=status).client() as admin:
        assert admin.invocations() is None


def test_subscription_lifecycle() -> None:
    fake = FakeAdmin()
    with fake.client() as admin:
        sub = admin.create_subscription("kafka://k/orders", "service://Counter/add", {"group.id": "g"})
        assert sub.id == "sub_1"
        assert admin.get_subscription("sub_1") == sub
        admin.delete_subscription("sub_1")
        assert admin.get_subscription("sub_1") is None
        admin.delete_subscription("sub_1")


def test_transport_and_http_errors_become_admin_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with (
        AdminClient("http://admin", transport=httpx.MockTransport(refuse)) as admin,
        pytest.raises(AdminError),
    ):
        admin.deployments()
    with AdminClient("http://admin", transport=httpx.MockTransport(lambda r: httpx.Response(503))) as admin:
        with pytest.raises(AdminError) as info:
            admin.register("http://a")
        assert info.value.status == 503
