"""`/query` is read-only and bounded: refused statements, the memory share, the answer size, the gate."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from admin_fixtures import Client
from aiohttp.test_utils import TestClient, TestServer
from restate_server.admin import query
from restate_server.admin.app import AdminContext, create_admin_app
from restate_server.admin.query import engine, tables
from restate_server.config import Config, QueryEngineOptions
from restate_server.metadata.providers.memory import MemoryMetadataStore
from restate_server.schema.registry import SchemaRegistry

MiB = 1024 * 1024
EMPTY = tables.Sources(db=None, num_partitions=0, deployments=[], services=[], attempts={})


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t AS SELECT 1",
        "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '/tmp/restate-query-e.csv'",
        "CREATE VIEW v AS SELECT 1",
        "CREATE SCHEMA s",
        "INSERT INTO sys_service SELECT * FROM sys_service",
        "DELETE FROM sys_service",
        "UPDATE sys_service SET name = 'x'",
        "DROP VIEW sys_invocation",
        "DROP TABLE sys_service",
        "SET datafusion.execution.batch_size = 1",
        "PREPARE p AS SELECT 1",
        "BEGIN TRANSACTION",
        "EXPLAIN ANALYZE INSERT INTO sys_service SELECT * FROM sys_service",
    ],
    ids=[
        "create-table",
        "create-external-table",
        "create-view",
        "create-schema",
        "insert",
        "delete",
        "update",
        "drop-view",
        "drop-table",
        "set",
        "prepare",
        "begin",
        "explain-analyze-insert",
    ],
)
def test_statements_that_are_not_queries_are_refused(sql: str) -> None:
    with pytest.raises(engine.QueryError) as info:
        engine.execute(sql, EMPTY)
    assert info.value.status == 400
    assert info.value.message.startswith("Datafusion error: ")
    assert info.value.message.endswith("/query runs read-only queries only")


@pytest.mark.parametrize("wrap", ["{}", "EXPLAIN ANALYZE {}"], ids=["copy", "explain-analyze-copy"])
def test_copy_to_a_file_is_refused_and_writes_nothing(tmp_path: Path, wrap: str) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(engine.QueryError) as info:
        engine.execute(wrap.format(f"COPY (SELECT 1 AS x) TO '{target}'"), EMPTY)
    assert info.value.status == 400
    assert "DML not supported: COPY" in info.value.message
    assert not target.exists()


@pytest.mark.parametrize(
    "sql",
    ["SELECT count(*) AS n FROM sys_invocation", "SHOW TABLES", "DESCRIBE sys_service", "EXPLAIN SELECT 1"],
    ids=["select-view", "show", "describe", "explain"],
)
def test_queries_still_run(sql: str) -> None:
    assert engine.execute(sql, EMPTY).schema is not None


def test_a_sort_past_the_memory_share_fails_cleanly() -> None:
    limits = engine.Limits(memory_bytes=8 * MiB)
    with pytest.raises(engine.QueryError) as info:
        engine.execute("SELECT * FROM generate_series(1, 5000000) ORDER BY 1 DESC", EMPTY, limits)
    assert info.value.status == 500
    assert "Resources exhausted" in info.value.message


def test_a_sort_past_the_share_spills_when_tmp_dir_is_set(tmp_path: Path) -> None:
    limits = engine.Limits(memory_bytes=8 * MiB, spill_dir=str(tmp_path))
    result = engine.execute(
        "SELECT max(value) AS m FROM (SELECT * FROM generate_series(1, 2000000) ORDER BY 1 DESC)",
        EMPTY,
        limits,
    )
    assert result.batches[0].to_pylist() == [{"m": 2000000}]


def test_an_answer_past_the_share_fails_cleanly() -> None:
    limits = engine.Limits(memory_bytes=1 * MiB)
    with pytest.raises(engine.QueryError) as info:
        engine.execute("SELECT * FROM generate_series(1, 1000000)", EMPTY, limits)
    assert info.value.status == 500
    assert "Resources exhausted: the answer holds more than 1048576 bytes" in info.value.message


def test_each_query_gets_an_equal_share_of_memory_size() -> None:
    settings = QueryEngineOptions(memory_size=256 * MiB, query_parallelism=4, tmp_dir="/spill")
    assert query.query_limits(settings) == engine.Limits(memory_bytes=64 * MiB, spill_dir="/spill")


async def test_gate_admits_slots_then_queues_then_refuses() -> None:
    gate = query.QueryGate(slots=1, waiting=1)
    order: list[str] = []
    release = asyncio.Event()

    async def hold(name: str) -> None:
        async with gate.slot():
            order.append(name)
            await release.wait()

    first = asyncio.create_task(hold("first"))
    second = asyncio.create_task(hold("second"))
    await asyncio.sleep(0)
    assert order == ["first"]  # the second waits for the only slot
    with pytest.raises(query.Overloaded):
        async with gate.slot():
            pass
    release.set()
    await asyncio.gather(first, second)
    assert order == ["first", "second"]
    async with gate.slot():  # room again
        pass


@pytest.fixture
async def admin_one_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Client, threading.Event, threading.Event, list[int]]]:
    """An admin app with one query slot and no waiting room, whose queries block until released."""
    release, started = threading.Event(), threading.Event()
    running: list[int] = [0, 0]  # now, most at once
    lock = threading.Lock()
    execute = engine.execute

    def blocking(sql: str, sources: tables.Sources, limits: engine.Limits) -> engine.Result:
        with lock:
            running[0] += 1
            running[1] = max(running)
        started.set()
        release.wait(30)
        with lock:
            running[0] -= 1
        return execute(sql, sources, limits)

    monkeypatch.setattr(engine, "execute", blocking)
    monkeypatch.setattr(query, "QUEUED_PER_SLOT", 0)
    base = Config(cluster_name="test")
    config = dataclasses.replace(
        base, admin=dataclasses.replace(base.admin, query_engine=QueryEngineOptions(query_parallelism=1))
    )
    registry = await SchemaRegistry.load(MemoryMetadataStore())
    app = create_admin_app(AdminContext(registry=registry, config=config), extra=[query.register])
    client: Client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client, release, started, running
    release.set()
    await client.close()


async def test_queries_past_the_parallelism_get_429(
    admin_one_slot: tuple[Client, threading.Event, threading.Event, list[int]],
) -> None:
    client, release, started, running = admin_one_slot
    body = {"query": "SELECT 1 AS one"}
    headers = {"accept": "application/json"}
    first = asyncio.create_task(client.post("/query", json=body, headers=headers))
    assert await asyncio.to_thread(started.wait, 10)
    refused = await client.post("/query", json=body, headers=headers)
    assert refused.status == 429
    assert await refused.json() == {"message": "Too many queries are running or waiting; retry later"}
    release.set()
    answered = await first
    assert answered.status == 200
    assert await answered.json() == {"rows": [{"one": 1}]}
    assert running[1] == 1
