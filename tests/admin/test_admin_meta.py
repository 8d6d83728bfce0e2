"""Health, version, cluster health, OpenAPI, API-version prefixes and the UI redirect."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

Client = TestClient  # type: ignore[type-arg]


@pytest.mark.parametrize("prefix", ["", "/v2", "/v3", "/v4"], ids=["plain", "v2", "v3", "v4"])
async def test_meta_health_under_every_prefix(admin: Client, prefix: str) -> None:
    response = await admin.get(f"{prefix}/health")
    assert (response.status, await response.read()) == (200, b"")


async def test_meta_v1_is_refused(admin: Client) -> None:
    response = await admin.get("/v1/deployments")
    assert response.status == 400
    assert await response.text() == (
        "Unsupported Admin API version V1. This server supports versions between V2 and V4."
    )


async def test_meta_version(admin: Client) -> None:
    body = await (await admin.get("/version")).json()
    assert (body["min_admin_api_version"], body["max_admin_api_version"]) == (2, 4)
    assert body["ingress_endpoint"] == "http://127.0.0.1:8080/"
    assert body["features"]["protocol_v7"] is False
    assert list(body) == [
        "version",
        "min_admin_api_version",
        "max_admin_api_version",
        "ingress_endpoint",
        "features",
    ]


async def test_meta_cluster_health_and_openapi(admin: Client) -> None:
    health = await (await admin.get("/cluster-health")).json()
    assert health == {"cluster_name": "test-cluster", "metadata_cluster_health": {"members": [1]}}
    doc = await (await admin.get("/openapi")).json()
    assert doc["openapi"].startswith("3.")
    assert "post" in doc["paths"]["/deployments"]


async def test_meta_root_redirects_to_ui(admin: Client) -> None:
    response = await admin.get("/", allow_redirects=False)
    assert (response.status, response.headers["location"]) == (308, "/ui/")


async def test_meta_unknown_route_is_a_json_404(admin: Client) -> None:
    # upstream's axum answers an empty 404, which the CLI reports as a JSON parse error
    response = await admin.get("/v4/nope")
    assert response.status == 404
    assert await response.json() == {
        "message": "The requested route 'GET /v4/nope' does not exist",
        "restate_code": None,
    }


async def test_meta_wrong_method_is_a_json_405(admin: Client) -> None:
    response = await admin.put("/health")
    assert response.status == 405
    assert response.headers["allow"] == "GET"
    assert (await response.json())["message"] == "Method PUT is not allowed on '/health'; allowed: GET"
