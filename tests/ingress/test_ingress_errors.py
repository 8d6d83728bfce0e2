"""Ingress refusals that need no partition: unknown routes, oversized bodies, overload; upstream's JSON."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer
from restate_server.config import Config
from restate_server.ids import InvocationId, awakeable_id
from restate_server.ingress.app import Ingress
from restate_server.metadata.providers.memory import MemoryMetadataStore
from restate_server.schema.registry import SchemaRegistry
from restate_server.worker.api import WorkerHandle

Client = TestClient  # type: ignore[type-arg]


class _HeldWorker:
    """Accepts records but holds each submit until released, so requests stay in flight."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.submitted = asyncio.Event()

    async def submit(self, partition_key: int, record: object) -> None:
        self.submitted.set()
        await self.release.wait()

    def ready(self) -> bool:
        return True


AWAKEABLE = awakeable_id(InvocationId.generate(7), 1)


async def _client(worker: object = None, **ingress: Any) -> Client:
    base = Config(cluster_name="test")
    config = dataclasses.replace(base, ingress=dataclasses.replace(base.ingress, **ingress))
    registry = await SchemaRegistry.load(MemoryMetadataStore())
    app = Ingress(config, registry, cast(WorkerHandle, worker)).app()
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
    [("GET", "/restate/nope"), ("GET", "/openapi/x"), ("GET", "/restate/awakeables/x/nope")],
    ids=["restate-unknown", "openapi", "awakeable-action"],
)
async def test_unknown_routes_answer_json_404(ingress: Client, method: str, path: str) -> None:
    response = await ingress.request(method, path)
    assert response.status == 404
    assert response.headers["x-restate-error-source"] == "ingress"
    assert await response.json() == {"code": 404, "message": "not found", "source": "ingress"}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/", "bad path: /"),
        ("/restate", "bad path: /restate"),
        ("/a/b/c/d/e/f/g/h", "bad path: /a/b/c/d/e/f/g/h"),
        ("/restate/invocation", "bad path, expected either /restate/invocation/:invocation_id/output"),
        ("/restate/lookup/x", "bad path, expected /restate/call/:service/:handler"),
    ],
    ids=["root", "restate-bare", "too-deep", "invocation-bare", "lookup-extra"],
)
async def test_malformed_paths_answer_400(ingress: Client, path: str, message: str) -> None:
    response = await ingress.get(path)
    assert response.status == 400
    assert (await response.json())["message"].startswith(message)


async def test_health_still_answers(ingress: Client) -> None:
    response = await ingress.get("/restate/health")
    assert (response.status, await response.json()) == (200, {"services": []})


async def test_body_past_request_size_limit_is_413_before_it_is_read(ingress: Client) -> None:
    response = await ingress.post(f"/restate/awakeables/{AWAKEABLE}/resolve", data=b"x" * 2048)
    assert response.status == 413
    assert response.headers["x-restate-error-source"] == "ingress"
    assert await response.json() == {
        "code": 413,
        "message": "cannot read body: length limit exceeded",
        "source": "ingress",
    }


async def test_chunked_body_past_request_size_limit_is_413(ingress: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 512

    response = await ingress.post(f"/restate/awakeables/{AWAKEABLE}/resolve", data=chunks())
    assert response.status == 413
    assert (await response.json())["message"] == "cannot read body: length limit exceeded"


async def test_requests_past_the_concurrency_limit_get_429() -> None:
    worker = _HeldWorker()
    client = await _client(worker, concurrent_api_requests_limit=1)
    try:
        held = asyncio.create_task(client.post(f"/restate/awakeables/{AWAKEABLE}/resolve", data=b'"v"'))
        await asyncio.wait_for(worker.submitted.wait(), 10)
        refused = await client.get("/restate/health")
        assert refused.status == 429
        assert await refused.json() == {
            "code": 429,
            "message": "too many requests, the ingress is overloaded. Retry later.",
            "source": "ingress",
        }
        worker.release.set()
        assert (await held).status == 202
        assert (await client.get("/restate/health")).status == 200
    finally:
        await client.close()
