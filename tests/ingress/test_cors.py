"""CORS on the ingress, as tower-http's `CorsLayer::very_permissive()` answers (upstream's layer)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from test_ingress_errors import Client, _client


@pytest.fixture
async def ingress() -> AsyncIterator[Client]:
    client = await _client()
    yield client
    await client.close()


async def test_preflight_is_answered_with_the_request_mirrored(ingress: Client) -> None:
    response = await ingress.options(
        "/Greeter/greet",
        headers={
            "origin": "http://ui.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, idempotency-key",
        },
    )
    assert response.status == 200
    assert await response.read() == b""
    assert response.headers["access-control-allow-origin"] == "http://ui.example"
    assert response.headers["access-control-allow-methods"] == "POST"
    assert response.headers["access-control-allow-headers"] == "content-type, idempotency-key"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["vary"] == "origin, access-control-request-method, access-control-request-headers"


async def test_answers_and_errors_carry_cors_headers(ingress: Client) -> None:
    health = await ingress.get("/restate/health", headers={"origin": "http://ui.example"})
    assert health.headers["access-control-allow-origin"] == "http://ui.example"
    assert health.headers["access-control-allow-credentials"] == "true"
    missing = await ingress.post("/Nope/greet")
    assert missing.status == 404
    assert "access-control-allow-origin" not in missing.headers  # no origin, nothing to mirror
    assert missing.headers["vary"] == "origin, access-control-request-method, access-control-request-headers"
