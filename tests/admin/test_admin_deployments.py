"""``/deployments`` against real SDK endpoints: creation, re-registration rules, dry run, removal."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sdk_fixtures import SdkService, SdkServiceFactory

Client = TestClient  # type: ignore[type-arg]


async def register(admin: Client, path: str = "/deployments", **body: Any) -> tuple[int, dict[str, Any]]:
    response = await admin.post(path, json=body)
    return response.status, await response.json()


def revisions(body: dict[str, Any]) -> dict[str, int]:
    return {s["name"]: s["revision"] for s in body["services"]}


async def test_deployments_register_creates_201(admin: Client, sdk_service_any_transport: SdkService) -> None:
    sdk_service, use_http_11 = sdk_service_any_transport, sdk_service_any_transport.use_http_11
    response = await admin.post("/deployments", json={"uri": sdk_service.uri, "use_http_11": use_http_11})
    assert response.status == 201
    body = await response.json()
    assert response.headers["location"] == f"deployments/{body['id']}"
    assert response.headers["content-type"] == "application/json"
    assert list(body) == ["id", "services", "min_protocol_version", "max_protocol_version", "sdk_version"]
    assert body["sdk_version"] == "restate-sdk-python/1.3.0"
    assert set(revisions(body)) == {"Greeter", "Counter", "Signup", "Sleeper", "Caller"}

    listing = await (await admin.get("/deployments")).json()
    (dep,) = listing["deployments"]
    assert list(dep) == [
        "id",
        "uri",
        "protocol_type",
        "http_version",
        "created_at",
        "min_protocol_version",
        "max_protocol_version",
        "sdk_version",
        "services",
    ]
    assert dep["uri"] == sdk_service.uri + "/"
    expected = ("RequestResponse", "HTTP/1.1") if use_http_11 else ("BidiStream", "HTTP/2.0")
    assert (dep["protocol_type"], dep["http_version"]) == expected
    assert dep["created_at"].endswith("Z")
    greeter = next(s for s in body["services"] if s["name"] == "Greeter")
    assert greeter["inactivity_timeout"] == ("0s" if use_http_11 else "1m")


async def test_deployments_plain_reregistration_is_200_and_changes_nothing(
    admin: Client, sdk_service: SdkService
) -> None:
    _, first = await register(admin, uri=sdk_service.uri)
    status, again = await register(admin, uri=sdk_service.uri)
    assert status == 200
    assert again["id"] == first["id"]
    assert set(revisions(again).values()) == {1}


async def test_deployments_v2_without_force_conflicts(admin: Client, sdk_service: SdkService) -> None:
    _, first = await register(admin, uri=sdk_service.uri)
    status, body = await register(admin, "/v2/deployments", uri=sdk_service.uri, force=False)
    assert status == 409
    assert body == {"message": f"Conflict: deployment {first['id']} already exists", "restate_code": None}


async def test_deployments_v2_force_defaults_true_and_overwrites(
    admin: Client, sdk_service: SdkService
) -> None:
    _, first = await register(admin, uri=sdk_service.uri)
    status, body = await register(admin, "/v2/deployments", uri=sdk_service.uri)
    assert status == 201
    assert body["id"] == first["id"]
    assert set(revisions(body).values()) == {2}


async def test_deployments_changed_endpoint_same_uri(
    admin: Client, sdk_service_factory: SdkServiceFactory
) -> None:
    v1 = sdk_service_factory()
    _, first = await register(admin, uri=v1.uri)
    v1.stop()
    v2 = sdk_service_factory(variant="v2", port=v1.port)

    status, body = await register(admin, uri=v2.uri)  # plain path: force defaults to false
    assert status == 200
    assert body["id"] == first["id"]
    greeter = await (await admin.get("/services/Greeter/handlers")).json()
    assert [h["name"] for h in greeter["handlers"]] == ["greet", "fail"]

    status, _ = await register(admin, "/v2/deployments", uri=v2.uri, force=False)
    assert status == 409

    status, body = await register(admin, "/v4/deployments", uri=v2.uri, force=True)
    assert status == 200
    assert body["id"] == first["id"]
    assert revisions(body)["Greeter"] == 2
    greeter = await (await admin.get("/services/Greeter/handlers")).json()
    assert [h["name"] for h in greeter["handlers"]] == ["greet", "fail", "hello"]
    assert len((await (await admin.get("/deployments")).json())["deployments"]) == 1


async def test_deployments_dry_run_returns_existing_id_without_changes(
    admin: Client, sdk_service: SdkService
) -> None:
    _, first = await register(admin, uri=sdk_service.uri)
    # What the CLI sends first: force + dry_run on /v4.
    status, body = await register(admin, "/v4/deployments", uri=sdk_service.uri, force=True, dry_run=True)
    assert status == 200
    assert body["id"] == first["id"]
    assert (await admin.get(f"/v4/deployments/{first['id']}")).status == 200
    service = await (await admin.get("/services/Greeter")).json()
    assert service["revision"] == 1


async def test_deployments_dry_run_of_new_endpoint_stores_nothing(
    admin: Client, sdk_service: SdkService
) -> None:
    status, body = await register(admin, "/v4/deployments", uri=sdk_service.uri, force=True, dry_run=True)
    assert status == 201
    assert (await admin.get(f"/v4/deployments/{body['id']}")).status == 404
    assert (await (await admin.get("/services")).json()) == {"services": []}


async def test_deployments_type_change_needs_breaking(
    admin: Client, sdk_service_factory: SdkServiceFactory
) -> None:
    await register(admin, uri=sdk_service_factory().uri)
    changed = sdk_service_factory(variant="counter-service")
    status, body = await register(admin, "/v4/deployments", uri=changed.uri, force=False)
    assert status == 409
    assert body["restate_code"] == "META0006"
    assert body["message"].startswith("[META0006] detected a new service revision for 'Counter'")
    status, body = await register(admin, "/v4/deployments", uri=changed.uri, force=False, breaking=True)
    assert status == 201
    counter = await (await admin.get("/services/Counter")).json()
    assert (counter["ty"], counter["revision"], counter["deployment_id"]) == ("Service", 2, body["id"])


async def test_deployments_new_version_keeps_old_deployment(
    admin: Client, sdk_service_factory: SdkServiceFactory
) -> None:
    _, old = await register(admin, uri=sdk_service_factory().uri)
    _, new = await register(admin, uri=sdk_service_factory(variant="v2").uri)
    described = await (await admin.get(f"/deployments/{old['id']}")).json()
    assert {s["name"]: s["revision"] for s in described["services"]}["Greeter"] == 1
    greeter = await (await admin.get("/services/Greeter")).json()
    assert (greeter["revision"], greeter["deployment_id"]) == (2, new["id"])


async def test_deployments_delete_requires_force(
    admin: Client, sdk_service_factory: SdkServiceFactory
) -> None:
    _, old = await register(admin, uri=sdk_service_factory().uri)
    _, new = await register(admin, uri=sdk_service_factory().uri)
    response = await admin.delete(f"/deployments/{new['id']}")
    assert (response.status, await response.read()) == (501, b"")
    response = await admin.delete(f"/v4/deployments/{new['id']}?force=true")
    assert (response.status, await response.read()) == (202, b"")
    assert (await admin.get(f"/deployments/{new['id']}")).status == 404
    greeter = await (await admin.get("/services/Greeter")).json()
    assert greeter["deployment_id"] == old["id"]
    response = await admin.delete(f"/deployments/{new['id']}?force=true")
    assert response.status == 404


async def test_deployments_unknown_and_malformed_ids(admin: Client) -> None:
    response = await admin.get("/deployments/dp_14c9BKnu6yNaZscwg6B17yx")
    assert response.status == 404
    assert await response.json() == {
        "message": "The requested deployment 'dp_14c9BKnu6yNaZscwg6B17yx' does not exist",
        "restate_code": None,
    }
    response = await admin.get("/deployments/dp_1nope")
    assert (response.status, await response.text()) == (400, "Invalid URL: bad length")


async def test_deployments_relative_uri_is_invalid_field(admin: Client) -> None:
    status, body = await register(admin, uri="localhost:9080")
    assert status == 400
    assert body["message"] == (
        "The request field 'uri' is invalid. Reason: The provided uri localhost:9080 is not absolute, "
        "only absolute URIs can be used."
    )


async def test_deployments_patch_updates_headers_in_place(admin: Client, sdk_service: SdkService) -> None:
    _, first = await register(admin, uri=sdk_service.uri)
    response = await admin.patch(f"/deployments/{first['id']}", json={"additional_headers": {"x-test": "1"}})
    assert response.status == 200
    body = await response.json()
    assert body["id"] == first["id"]
    assert body["additional_headers"] == {"x-test": "1"}
    response = await admin.put(f"/v4/deployments/{first['id']}", json={})
    assert response.status == 405
