"""`restate invocations list` asks for invocations whose status is not `completed`: such a query
reads the index of unfinished invocations instead of every retained status row, and answers the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from restate_server.admin.query import engine, pushdown, render, tables
from restate_server.ids import InvocationId, partition_key_for, partition_of
from restate_server.rocksdb import Database
from restate_server.storage import keys, status
from restate_server.storage.status import Status
from restate_server.storage.transaction import Transaction
from status_rows import greeter_status

NUM_PARTITIONS = 4
CLI_LIST = (  # what `restate invocations list` sends
    "WITH invocations AS (SELECT inv.id, inv.target, inv.status, inv.created_at FROM sys_invocation inv"
    " WHERE inv.status != 'completed' ORDER BY inv.created_at DESC LIMIT 100) SELECT * FROM invocations"
)


@pytest.fixture
def store(tmp_path: Path):
    db = Database(tmp_path / "db")
    yield db
    db.close()


def _sources(db: Database | None) -> tables.Sources:
    return tables.Sources(db=db, num_partitions=NUM_PARTITIONS, deployments=[], services=[], attempts={})


def _put(db: Database, key: str, state: Status, *, indexed: bool = True) -> InvocationId:
    inv = InvocationId.generate(partition_key_for(key))
    row = greeter_status(state, created_at=1_763_764_465_000, modified_at=1_763_764_465_000)
    txn = Transaction(db)
    partition = partition_of(inv.partition_key, NUM_PARTITIONS)
    if indexed:
        status.put(txn, partition, inv.to_bytes(), row)
    else:  # a row the index does not know: shows which of the two a query read
        txn.put(keys.status(partition, inv.to_bytes()), row.encode())
    txn.commit()
    return inv


def _ids(sql: str, db: Database) -> set[str]:
    answer = json.loads(b"".join(render.json_rows(engine.execute(sql, _sources(db)))))
    return {str(row["id"]) for row in answer["rows"]}


def _unfinished_only(sql: str) -> bool:
    plan = engine._context(_sources(None), set(), {}).sql(sql).optimized_logical_plan()
    return pushdown.scans(plan)["sys_invocation_status"].unfinished


def test_the_cli_list_reads_the_index_and_gets_every_unfinished_invocation(store: Database) -> None:
    unfinished = {
        str(_put(store, f"k{n}", state))
        for n, state in enumerate(Status)
        if state not in (Status.FREE, Status.COMPLETED)
    }
    for n in range(20):
        _put(store, f"done{n}", Status.COMPLETED)
    unindexed = _put(store, "unindexed", Status.INVOKED, indexed=False)
    assert _ids(CLI_LIST, store) == unfinished
    # a filter that cannot exclude completed rows by itself reads the status rows
    assert _ids(CLI_LIST.replace("!= 'completed'", "!= 'completed' OR inv.target = 'x'"), store) == (
        unfinished | {str(unindexed)}
    )


@pytest.mark.parametrize(
    ("where", "unfinished_only"),
    [
        ("status != 'completed'", True),
        ("status <> 'completed' AND target_service_name = 'Greeter'", True),
        ("status NOT IN ('completed')", True),
        ("status != 'completed' OR target_service_name = 'Greeter'", False),
        ("status = 'completed'", False),
        ("target_service_name = 'Greeter'", False),
    ],
)
def test_only_a_filter_that_drops_every_completed_invocation_uses_the_index(
    where: str, unfinished_only: bool
) -> None:
    assert _unfinished_only(f"SELECT id FROM sys_invocation_status WHERE {where}") is unfinished_only
