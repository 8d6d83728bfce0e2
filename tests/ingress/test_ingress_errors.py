"""Ingress refusals that need no partition: unknown routes, oversized bodies, overload; upstream's JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer
from restate_server.config import Config
from restate_server.ingress.app import Ingress
from restate_server.metadata.providers.memory import MemoryMetadataStore
from restate_server.schema.registry import SchemaRegistry
from restate_server.worker.api import WorkerHandle

Client = TestClient  # type: ignore[type-arg]


async def _client(**ingress: Any) -> Client:
    base = Config(cluster_name="test")
    config = dataclasses.replace(base, ingress=dataclasses.replace(base.ingress, **ingress))
    registry = await SchemaRegistry.load(MemoryMetadataStore())
    app = Ingress(config, registry, cast(WorkerHandle, None)).app()
    client: Client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def ingress() -> AsyncIterator[Client]:
    client = await _client(request_size_limit=1024)
    yield client
    await client.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/restate/nope"), ("POST", "/restate"), ("GET", "/restate/invocation")],
    ids=["root", "restate-unknown", "restate-bare", "invocation-bare"],
)
async def test_unknown_routes_answer_json_404(ingress: Client, method: str, path: str) -> None:
    response = await ingress.request(method, path)
    assert response.status == 404
    assert response.headers["x-restate-error-source"] == "ingress"
    assert await response.json() == {"code": 404, "message": "not found", "source": "ingress"}


async def test_health_still_answers(ingress: Client) -> None:
    response = await ingress.get("/restate/health")
    assert (response.status, await response.json()) == (200, {"services": []})
