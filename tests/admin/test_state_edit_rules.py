"""``POST /services/{service}/state``: one PatchState record per edit, with the time it was accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from admin_fixtures import Client
from aiohttp.test_utils import TestClient, TestServer
from restate_server.admin.app import AdminContext, create_admin_app
from restate_server.admin.discovery import DiscoveryClient
from restate_server.config import Config
from restate_server.ids import partition_key_for, partition_of
from restate_server.log.records import PatchState, Record
from restate_server.metadata.providers.memory import MemoryMetadataStore
from restate_server.schema.registry import SchemaRegistry
from sdk_fixtures import SdkService


class _Worker:
    def __init__(self) -> None:
        self.appended: list[tuple[int, Record]] = []

    def partition_for(self, partition_key: int) -> int:
        return partition_of(partition_key, 4)

    async def append(self, partition: int, records: list[Record]) -> None:
        self.appended.extend((partition, record) for record in records)


@pytest.fixture
async def edits(sdk_service: SdkService) -> AsyncIterator[tuple[Client, _Worker]]:
    registry = await SchemaRegistry.load(MemoryMetadataStore(), discoverer=DiscoveryClient(timeout=3.0))
    worker = _Worker()
    context = AdminContext(registry=registry, config=Config(), worker=worker)  # type: ignore[arg-type]
    client: Client = TestClient(TestServer(create_admin_app(context), host="127.0.0.1"))
    await client.start_server()
    assert (await client.post("/deployments", json={"uri": sdk_service.uri})).status == 201
    yield client, worker
    await client.close()


async def test_an_edit_is_appended_as_one_record(edits: tuple[Client, _Worker]) -> None:
    client, worker = edits
    body: dict[str, Any] = {"object_key": "k", "version": "v1", "new_state": {"count": list(b"5")}}
    response = await client.post("/services/Counter/state", json=body)
    assert response.status == 202
    [(partition, record)] = worker.appended
    assert partition == partition_of(partition_key_for("k"), 4)
    assert isinstance(record, PatchState)
    assert (record.service, record.key, record.new_state, record.expected_version) == (
        "Counter",
        "k",
        {b"count": b"5"},
        "v1",
    )
    assert record.now > 0


@pytest.mark.parametrize(
    ("service", "body", "status"),
    [
        ("Nope", {"object_key": "k", "new_state": {"a": [1]}}, 404),
        ("Greeter", {"object_key": "k", "new_state": {}}, 400),
        ("Counter", {"new_state": {}}, 422),
        ("Counter", {"object_key": "k", "new_state": {"a": [256]}}, 422),
        ("Counter", {"object_key": "k", "new_state": []}, 422),
        ("Counter", {"object_key": "k", "version": 3, "new_state": {}}, 422),
    ],
    ids=["unknown-service", "service-without-state", "no-key", "not-bytes", "not-a-map", "bad-version"],
)
async def test_bad_edits_are_refused_and_append_nothing(
    edits: tuple[Client, _Worker], service: str, body: dict[str, Any], status: int
) -> None:
    client, worker = edits
    response = await client.post(f"/services/{service}/state", json=body)
    assert response.status == status
    assert worker.appended == []
