"""The SQL introspection tables and the /query rendering, on a real partition store, without HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from restate_server.admin.query import engine, journal, pushdown, render, tables
from restate_server.ids import InvocationId, partition_key_for, partition_of
from restate_server.log.records import Failure
from restate_server.protocol import messages
from restate_server.rocksdb import Database
from restate_server.storage import inbox, state, state_history, status
from restate_server.storage.status import InvocationStatus
from restate_server.storage.transaction import Transaction

NUM_PARTITIONS = 4


def _status(**overrides: object) -> InvocationStatus:
    fields: dict[str, object] = {
        "status": status.Status.INVOKED,
        "service": "Counter",
        "handler": "add",
        "key": "k1",
        "service_ty": "VirtualObject",
        "handler_ty": "Exclusive",
        "created_at": 1_763_764_465_777,
        "modified_at": 1_763_764_466_000,
        "source": ["ingress", None, None, None],
        "deployment_id": "dp_14c9BKnu6yNaZscwg6B17yx",
        "protocol_version": 6,
        "journal_length": 2,
        "commands": 2,
        "completion_retention": 86_400_000,
        "journal_retention": 86_400_000,
    }
    fields.update(overrides)
    return InvocationStatus(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path):
    db = Database(tmp_path / "db")
    yield db
    db.close()


def _put(db: Database, inv: InvocationId, st: InvocationStatus) -> None:
    txn = Transaction(db)
    status.put(txn, partition_of(inv.partition_key, NUM_PARTITIONS), inv.to_bytes(), st)
    txn.commit()


def _sources(db: Database | None, attempts: dict[bytes, tables.AttemptState] | None = None) -> tables.Sources:
    return tables.Sources(
        db=db, num_partitions=NUM_PARTITIONS, deployments=[], services=[], attempts=attempts or {}
    )


def _rows(sql: str, sources: tables.Sources) -> list[dict[str, object]]:
    return list(json.loads(b"".join(render.json_rows(engine.execute(sql, sources))))["rows"])


def test_sys_invocation_maps_raw_status_like_upstream_view(store: Database) -> None:
    pk = partition_key_for("k1")
    running, backing_off, ready, inboxed, done = (InvocationId.generate(pk) for _ in range(5))
    _put(store, running, _status())
    _put(store, backing_off, _status())
    _put(store, ready, _status())
    _put(store, inboxed, _status(status=status.Status.INBOXED))
    _put(
        store,
        done,
        _status(
            status=status.Status.COMPLETED, result=Failure(code=409, message="cancelled"), completed_at=5
        ),
    )
    attempt = {
        "last_start_at": None,
        "next_retry_at": None,
        "last_failure": None,
        "last_failure_code": None,
        "server": None,
    }
    attempts = {
        running.to_bytes(): tables.AttemptState(in_flight=True, retry_count=1, **attempt),
        backing_off.to_bytes(): tables.AttemptState(in_flight=False, retry_count=2, **attempt),
    }
    rows = _rows(
        "SELECT id, status, completion_result, completion_failure FROM sys_invocation",
        _sources(store, attempts),
    )
    by_id = {r["id"]: r for r in rows}
    assert by_id[str(running)]["status"] == "running"
    assert by_id[str(backing_off)]["status"] == "backing-off"
    assert by_id[str(ready)]["status"] == "ready"
    assert by_id[str(inboxed)]["status"] == "pending"
    assert by_id[str(done)] == {
        "id": str(done),
        "status": "completed",
        "completion_result": "failure",
        "completion_failure": "[409] cancelled",
    }


def test_status_row_renders_timestamps_and_durations_as_upstream_json(store: Database) -> None:
    inv = InvocationId.generate(partition_key_for("k1"))
    _put(store, inv, _status())
    [row] = _rows("SELECT * FROM sys_invocation_status", _sources(store))
    assert row["created_at"] == "2025-11-21T22:34:25.777Z"
    assert row["modified_at"] == "2025-11-21T22:34:26Z"
    assert row["completion_retention"] == "PT86400S"
    assert row["target"] == "Counter/k1/add"
    assert row["target_service_ty"] == "virtual_object"
    assert row["invoked_by"] == "ingress"
    assert "completed_at" not in row  # nulls are left out, as arrow's JSON writer does


def test_state_lock_and_inbox_tables(store: Database) -> None:
    pk = partition_key_for("k1")
    partition = partition_of(pk, NUM_PARTITIONS)
    holder, queued = InvocationId.generate(pk), InvocationId.generate(pk)
    _put(store, queued, _status(status=status.Status.INBOXED))
    txn = Transaction(store)
    state.put(txn, partition, "Counter", "k1", b"count", b"7")
    inbox.lock(txn, partition, "Counter", "k1", holder.to_bytes())
    inbox.enqueue(txn, partition, "Counter", "k1", queued.to_bytes())
    txn.commit()
    src = _sources(store)
    assert _rows("SELECT service_name, service_key, key, value_utf8, value FROM state", src) == [
        {"service_name": "Counter", "service_key": "k1", "key": "count", "value_utf8": "7", "value": "37"}
    ]
    assert _rows("SELECT invocation_id FROM sys_keyed_service_status", src) == [
        {"invocation_id": str(holder)}
    ]
    [row] = _rows("SELECT id, sequence_number, created_at FROM sys_inbox", src)
    assert row == {"id": str(queued), "sequence_number": 0, "created_at": "2025-11-21T22:34:25.777Z"}


def test_state_history_has_one_row_per_operation(store: Database) -> None:
    partition = partition_of(partition_key_for("k1"), NUM_PARTITIONS)
    txn = Transaction(store)
    changes = [(b"count", b"1"), (b"blob", b"\xff")]
    state_history.append(
        txn,
        partition,
        "Counter",
        "k1",
        commit_ts=1_763_764_465_777,
        lsn=9,
        origin=(None, "t1"),
        changes=changes,
    )
    state_history.append(
        txn,
        partition,
        "Counter",
        "k1",
        commit_ts=1_763_764_466_000,
        lsn=12,
        origin=(None, "t2"),
        changes=[(b"count", None)],
    )
    txn.commit()
    rows = _rows(
        "SELECT service_key, txn_id, commit_ts, log_position, key, version, value_utf8, value"
        " FROM sys_state_history ORDER BY commit_ts, key DESC",
        _sources(store),
    )
    assert rows == [
        {
            "service_key": "k1",
            "txn_id": "t1",
            "commit_ts": "2025-11-21T22:34:25.777Z",
            "log_position": 9,
            "key": "count",
            "version": 1,
            "value_utf8": "1",
            "value": "31",
        },
        {
            "service_key": "k1",
            "txn_id": "t1",
            "commit_ts": "2025-11-21T22:34:25.777Z",
            "log_position": 9,
            "key": "blob",
            "version": 1,
            "value": "ff",
        },
        {
            "service_key": "k1",
            "txn_id": "t2",
            "commit_ts": "2025-11-21T22:34:26Z",
            "log_position": 12,
            "key": "count",
            "version": 2,
        },
    ]


def test_tables_without_a_store_are_empty_but_typed() -> None:
    src = _sources(None)
    assert _rows("SELECT * FROM sys_journal", src) == []
    count = _rows(
        "SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'sys_journal' "
        "AND column_name IN ('version', 'entry_json', 'appended_at')",
        src,
    )
    assert count == [{"n": 3}]


@pytest.mark.parametrize(
    ("sql", "status_code", "message"),
    [
        (
            "SELECT nope FROM nowhere",
            500,
            "Datafusion error: Error during planning: table 'restate.public.nowhere' not found",
        ),
        (
            "SELEC 1",
            400,
            'Datafusion error: SQL error: ParserError("Expected: an SQL statement, found: SELEC at Line: 1, Column: 1")',
        ),
        ("SELECT 1/0", 500, "Datafusion error: Arrow error: Divide by zero error"),
    ],
    ids=["unknown-table", "syntax", "execution"],
)
def test_errors_read_like_upstream(sql: str, status_code: int, message: str) -> None:
    with pytest.raises(engine.QueryError) as caught:
        engine.execute(sql, _sources(None))
    assert (caught.value.status, caught.value.message) == (status_code, message)


def test_unknown_column_message_has_no_suggestion() -> None:
    with pytest.raises(engine.QueryError) as caught:
        engine.execute("SELECT nope FROM sys_service", _sources(None))
    assert caught.value.message == (
        "Datafusion error: Schema error: No field named nope. Valid fields are sys_service.name, "
        "sys_service.revision, sys_service.public, sys_service.ty, sys_service.deployment_id."
    )


def test_referenced_tables_expand_the_view() -> None:
    assert engine.referenced_tables("select * from sys_invocation where id = 'x'") == {
        "sys_invocation_status",
        "sys_invocation_state",
    }
    assert engine.referenced_tables("SELECT key, value FROM state") == {"state"}


@pytest.mark.parametrize(
    ("message_type", "label"),
    [
        (messages.MessageType.INPUT_COMMAND, "Command: Input"),
        (messages.MessageType.GET_EAGER_STATE_COMMAND, "Command: GetEagerState"),
        (messages.MessageType.SLEEP_COMPLETION, "Notification: Sleep"),
        (messages.MessageType.CALL_INVOCATION_ID_COMPLETION, "Notification: CallInvocationId"),
        (messages.MessageType.SIGNAL_NOTIFICATION, "Notification: Signal"),
    ],
    ids=["input", "eager-state", "sleep-completion", "call-id", "signal"],
)
def test_journal_entry_type_labels(message_type: int, label: str) -> None:
    assert journal.entry_type_name(message_type) == label


def test_arrow_stream_round_trips() -> None:
    result = engine.execute("SELECT 1 AS one, 'a' AS s", _sources(None))
    table = pa.ipc.open_stream(b"".join(render.arrow_stream(result))).read_all()
    assert table.to_pylist() == [{"one": 1, "s": "a"}]


def _plan(sql: str):  # type: ignore[no-untyped-def]
    return engine._context(_sources(None), set(), {}).sql(sql).optimized_logical_plan()


A, B = (InvocationId.generate(partition_key_for(k)) for k in ("a", "b"))


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            f"SELECT * FROM sys_journal sj WHERE sj.id = '{A}' ORDER BY index DESC LIMIT 10",
            {"sys_journal": {A}},
        ),
        (
            f"SELECT * FROM sys_invocation WHERE id IN ('{A}', '{B}') AND status != 'completed'",
            {"sys_invocation_status": {A, B}},  # no attempts held: the view reads no attempt state
        ),
        (f"SELECT * FROM sys_journal WHERE id = '{A}' OR index > 3", {}),
        ("SELECT * FROM sys_journal", {}),
        (f"SELECT * FROM sys_journal WHERE id = '{A}' UNION ALL SELECT * FROM sys_journal", {}),
        ("SELECT * FROM sys_journal WHERE id = 'inv_1nope'", {"sys_journal": set()}),
    ],
    ids=[
        "describe-journal",
        "in-list-view",
        "or-other-column",
        "no-filter",
        "one-scan-unfiltered",
        "malformed",
    ],
)
def test_pushdown_pins_ids_only_when_safe(sql: str, expected: dict[str, set[InvocationId]]) -> None:
    restrictions = pushdown.id_restrictions(_plan(sql))
    assert restrictions == {table: frozenset(i.to_bytes() for i in ids) for table, ids in expected.items()}


def test_point_reads_give_the_same_rows_as_a_scan(store: Database) -> None:
    _put(store, A, _status(key="a"))
    _put(store, B, _status(key="b"))
    rows = _rows(f"SELECT id, target FROM sys_invocation WHERE id = '{A}'", _sources(store))
    assert rows == [{"id": str(A), "target": "Counter/a/add"}]
