"""Helpers for the admin API tests (kept out of conftest.py so test modules can import them)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from restate_server.admin.app import AdminContext, create_admin_app
from restate_server.admin.discovery import DiscoveryClient
from restate_server.config import Config
from restate_server.invoker.signing import RequestSigner
from restate_server.metadata.providers.memory import MemoryMetadataStore
from restate_server.schema.registry import SchemaRegistry

FAST_RETRIES = (0.05, 0.1)  # keep failing-discovery tests quick

Client = TestClient  # type: ignore[type-arg]


async def make_admin(signer: RequestSigner | None = None) -> Client:
    """An admin API test client over an empty in-memory registry with real discovery."""
    discoverer = DiscoveryClient(signer=signer, retry_delays=FAST_RETRIES, timeout=3.0)
    registry = await SchemaRegistry.load(MemoryMetadataStore(), discoverer=discoverer)
    app = create_admin_app(AdminContext(registry=registry, config=Config(cluster_name="test-cluster")))
    client: Client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client
