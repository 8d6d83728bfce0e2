"""Columnar SQL tables: columns cut out of stored rows equal what decoding each row would show.

A reference (the row-by-row mapping the server used before) is applied to random statuses, in both
the current and the older msgpack layout, and compared with every column the columnar builder
makes. Pushdown is checked for soundness: a translated filter never drops a row the query keeps.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import msgpack
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from restate_server.admin.query import columns, engine, journal, keyed, pushdown, scan, tables
from restate_server.ids import InvocationId, partition_of
from restate_server.outcomes import Failure, Suspended, Value, Void, result_to_wire, suspended_to_wire
from restate_server.protocol import messages, protocol_pb2
from restate_server.rocksdb import Database
from restate_server.storage import journal as journal_store, keys, status
from restate_server.storage.status import InvocationStatus, Status
from restate_server.storage.transaction import Transaction

NUM_PARTITIONS = 4
SERVICE_TY = {"Service": "service", "VirtualObject": "virtual_object", "Workflow": "workflow"}


def _reference_row(invocation_id: bytes, st: InvocationStatus) -> dict[str, Any]:
    """What one row shows, decoded the slow way (the mapping rows had before the columnar tables)."""
    inv = InvocationId.from_bytes(invocation_id)
    kind, caller_id, caller_target, subscription_id = (list(st.source) + [None] * 4)[:4]
    row: dict[str, Any] = {
        "partition_key": inv.partition_key,
        "id": str(inv),
        "status": st.status.value,
        "target": st.target,
        "target_service_name": st.service,
        "target_handler_name": st.handler,
        "target_service_ty": SERVICE_TY.get(st.service_ty, st.service_ty),
        "idempotency_key": st.idempotency_key,
        "pinned_deployment_id": st.deployment_id,
        "pinned_service_protocol_version": st.protocol_version,
        "journal_size": st.journal_length,
        "journal_commands_size": st.commands,
        "created_at": st.created_at,
        "created_using_restate_version": "1.7.12",
        "modified_at": st.modified_at,
        "inboxed_at": st.inboxed_at,
        "scheduled_at": st.scheduled_at,
        "scheduled_start_at": st.execute_at,
        "running_at": st.running_at,
        "completed_at": st.completed_at,
        "completion_retention": st.completion_retention,
        "journal_retention": st.journal_retention,
        "invoked_by": kind or "ingress",
        "target_service_key": st.key if st.keyed else None,
    }
    if st.status == Status.COMPLETED and st.result is not None:
        failed = isinstance(st.result, Failure)
        row["completion_result"] = "failure" if failed else "success"
        if isinstance(st.result, Failure):
            row["completion_failure"] = f"[{st.result.code}] {st.result.message}"
    if caller_id is not None:
        column = "restarted_from" if kind == "restart_as_new" else "invoked_by_id"
        row[column] = str(InvocationId.from_bytes(caller_id))
    if caller_target is not None:
        row["invoked_by_target"] = caller_target
        row["invoked_by_service_name"] = caller_target.split("/", 1)[0]
    row["invoked_by_subscription_id"] = subscription_id
    if st.status == Status.SUSPENDED and st.waiting is not None:
        row["suspended_waiting_for_completions"] = list(st.waiting.completions)
        row["suspended_waiting_for_signals"] = list(st.waiting.signals)
    return row


def _random_status(rng: random.Random) -> InvocationStatus:
    return InvocationStatus(
        status=rng.choice(list(Status)[1:]),
        service=rng.choice(["Greeter", "Counter", "Wf"]),
        handler=rng.choice(["greet", "add", "run"]),
        key=rng.choice([None, "k1", "ключ/2"]),
        service_ty=rng.choice(["Service", "VirtualObject", "Workflow"]),
        handler_ty=rng.choice([None, "Exclusive", "Shared"]),
        created_at=rng.randint(0, 2**41),
        modified_at=rng.randint(0, 2**41),
        source=rng.choice(
            [
                ["ingress", None, None, None],
                ["service", InvocationId.generate(5).to_bytes(), "Caller/x/call", None],
                ["restart_as_new", InvocationId.generate(7).to_bytes(), None, None],
                ["subscription", None, None, "sub_1abc"],
            ]
        ),
        idempotency_key=rng.choice([None, f"ik-{rng.random()}"]),
        journal_length=rng.randint(0, 100),
        commands=rng.randint(0, 50),
        deployment_id=rng.choice([None, "dp_14c9BKnu6yNaZscwg6B17yx"]),
        protocol_version=rng.choice([None, 5, 6]),
        inboxed_at=rng.choice([None, 5]),
        scheduled_at=rng.choice([None, 6]),
        execute_at=rng.choice([None, 7]),
        running_at=rng.choice([None, 8]),
        completed_at=rng.choice([None, 9]),
        completion_retention=rng.randint(0, 10**9),
        journal_retention=rng.randint(0, 10**9),
        result=rng.choice([None, Value(content=b"x"), Failure(code=500, message="boom é"), Void()]),
        waiting=rng.choice([None, Suspended(completions=(1, 2), signals=(3,))]),
    )


def _list_layout(st: InvocationStatus) -> bytes:
    """A row as the server wrote it before the columnar layout (a msgpack list of the fields)."""
    values: list[Any] = [getattr(st, name) for name in InvocationStatus.__dataclass_fields__]
    values[0] = st.status.value
    names = list(InvocationStatus.__dataclass_fields__)
    if st.waiting is not None:
        values[names.index("waiting")] = suspended_to_wire(st.waiting)
    if st.result is not None:
        values[names.index("result")] = result_to_wire(st.result)
    data: bytes = msgpack.packb(values, use_bin_type=True)
    return data


@pytest.fixture
def store(tmp_path: Path):
    db = Database(tmp_path / "db")
    yield db
    db.close()


def _sources(db: Database) -> tables.Sources:
    return tables.Sources(db=db, num_partitions=NUM_PARTITIONS, deployments=[], services=[], attempts={})


def _fill(db: Database, count: int) -> dict[str, dict[str, Any]]:
    rng = random.Random(7)
    expected = {}
    txn = Transaction(db)
    for n in range(count):
        inv = InvocationId.generate(rng.getrandbits(64))
        st = _random_status(rng)
        data = _list_layout(st) if n % 4 == 0 else st.encode()
        txn.put(keys.status(partition_of(inv.partition_key, NUM_PARTITIONS), inv.to_bytes()), data)
        expected[str(inv)] = _reference_row(inv.to_bytes(), st)
    txn.commit()
    return expected


def _table(sql: str, db: Database) -> list[dict[str, Any]]:
    result = engine.execute(sql, _sources(db))
    rows: list[dict[str, Any]] = pa.Table.from_batches(
        list(result.answer()), schema=result.schema
    ).to_pylist()
    return rows


def _plain(value: Any) -> Any:
    if hasattr(value, "timestamp") and hasattr(value, "tzinfo"):
        return round(value.timestamp() * 1000)
    if hasattr(value, "total_seconds"):
        return round(value.total_seconds() * 1000)
    return value


def test_status_columns_equal_the_row_by_row_mapping_in_both_layouts(store: Database) -> None:
    expected = _fill(store, 300)
    rows = _table("SELECT * FROM sys_invocation_status", store)
    assert len(rows) == len(expected)
    for row in rows:
        reference = expected[row["id"]]
        for name, value in row.items():
            assert _plain(value) == reference.get(name), (name, row["id"])


def test_status_scan_with_few_columns_and_a_filter_keeps_the_rows_a_full_scan_keeps(store: Database) -> None:
    expected = _fill(store, 200)
    sql = (
        "SELECT id FROM sys_invocation_status WHERE target_service_name IN ('Greeter', 'Wf') "
        "AND NOT (status = 'completed' AND journal_size > 20) AND idempotency_key IS NOT NULL ORDER BY id"
    )
    want = sorted(
        i
        for i, r in expected.items()
        if r["target_service_name"] in ("Greeter", "Wf")
        and not (r["status"] == "completed" and r["journal_size"] > 20)
        and r["idempotency_key"] is not None
    )
    assert [r["id"] for r in _table(sql, store)] == want


def test_a_filter_copies_only_the_columns_read_and_unread_ones_share_a_null_array_per_type() -> None:
    schema = pa.schema(
        [
            ("id", pa.large_utf8()),
            ("n", pa.int64()),
            ("a", pa.large_utf8()),
            ("b", pa.large_utf8()),
            ("c", pa.int64()),
        ]
    )
    ids = pa.array(["w", "x", "y", "z"], pa.large_utf8())
    batch = scan.full_batch(schema, 4, {"id": ids, "n": pa.array([1, 2, 3, 4], pa.int64())})
    read = scan.Scan(columns=frozenset({"id", "n"}), predicate=pc.field("n") > 2)
    [kept] = scan.restrict([batch], read)
    assert kept.schema == schema
    assert kept.column("id").to_pylist() == ["y", "z"]
    assert [kept.column(name).null_count for name in ("a", "b", "c")] == [2, 2, 2]
    assert kept.column("a").buffers()[1].address == kept.column("b").buffers()[1].address
    # a predicate on a column outside the projection still filters (the whole batch, then)
    everything = scan.Scan(columns=frozenset({"id"}), predicate=pc.field("n") < 2)
    assert [b.column("id").to_pylist() for b in scan.restrict([batch], everything)] == [["w"]]


def test_view_counts_by_status_reading_only_unfinished_rows(
    store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(9)
    txn = Transaction(store)
    written: dict[str, int] = {}
    for _ in range(120):
        inv = InvocationId.generate(rng.getrandbits(64))
        st = _random_status(rng)
        status.put(txn, partition_of(inv.partition_key, NUM_PARTITIONS), inv.to_bytes(), st)  # indexes too
        written[st.status.value] = written.get(st.status.value, 0) + 1
    txn.commit()
    plan = engine._context(_sources(store), set(), {}).sql(
        "SELECT status, count(*) FROM sys_invocation GROUP BY status"
    )
    assert pushdown.scans(plan.optimized_logical_plan())["sys_invocation_status"].columns == {"status"}

    def unread(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a status row was scanned")

    monkeypatch.setattr(Database, "scan_chunks", unread)
    monkeypatch.setattr(Database, "scan_value_chunks", unread)
    rows = _table("SELECT ss.status, count(*) AS n FROM sys_invocation_status ss GROUP BY ss.status", store)
    assert {r["status"]: r["n"] for r in rows} == written
    assert written["completed"] < 120


def test_a_limit_without_filter_reads_that_many_rows(store: Database) -> None:
    _fill(store, 50)
    plan = engine._context(_sources(store), set(), {}).sql("SELECT id FROM sys_invocation_status LIMIT 7")
    read = pushdown.scans(plan.optimized_logical_plan())["sys_invocation_status"]
    assert read.limit == 7
    assert sum(b.num_rows for b in tables.build_status(_sources(store), read)) == 7


def test_a_scan_past_the_memory_share_fails_cleanly(store: Database) -> None:
    _fill(store, 300)
    with pytest.raises(engine.QueryError) as info:
        engine.execute(
            "SELECT * FROM sys_invocation_status", _sources(store), engine.Limits(memory_bytes=4096)
        )
    assert "Resources exhausted: the tables it reads hold more than 4096 bytes" in info.value.message


@pytest.mark.parametrize(
    ("sql", "translated"),
    [
        ("SELECT * FROM sys_invocation_status WHERE status = 'completed'", True),
        ("SELECT * FROM sys_invocation_status WHERE NOT (status = 'x' AND upper(target) = 'Y')", False),
        ("SELECT * FROM sys_invocation_status WHERE status = 'x' OR upper(target) = 'Y'", False),
        ("SELECT * FROM sys_invocation_status WHERE status = 'x' AND upper(target) = 'Y'", True),
    ],
    ids=["comparison", "not-of-a-partial-and", "or-with-an-opaque-side", "and-keeps-its-known-side"],
)
def test_filters_are_translated_only_when_sound(sql: str, translated: bool) -> None:
    empty = tables.Sources(db=None, num_partitions=0, deployments=[], services=[], attempts={})
    plan = engine._context(empty, set(), {}).sql(sql).optimized_logical_plan()
    assert (pushdown.scans(plan)["sys_invocation_status"].predicate is not None) == translated


def test_invocation_id_text_matches_the_id_type() -> None:
    rng = random.Random(3)
    ids = [InvocationId.generate(rng.getrandbits(64)) for _ in range(200)]
    ids += [InvocationId(0, b"\0" * 16), InvocationId(2**64 - 1, b"\xff" * 16)]
    import numpy as np

    raw = np.frombuffer(b"".join(i.to_bytes() for i in ids), np.uint8).reshape(-1, 24)
    assert columns.invocation_ids(raw).to_pylist() == [str(i) for i in ids]


def test_journal_rows_read_payloads_only_when_selected(store: Database) -> None:
    inv = InvocationId.generate(11)
    partition = partition_of(inv.partition_key, NUM_PARTITIONS)
    txn = Transaction(store)
    status.put(txn, partition, inv.to_bytes(), _random_status(random.Random(1)))
    sleep = protocol_pb2.SleepCommandMessage(wake_up_time=1_700_000_000_000, name="nap")
    big = b"\x07" * 300_000
    journal_store.append(txn, partition, inv.to_bytes(), 0, messages.MessageType.INPUT_COMMAND, 0, big)
    journal_store.append(
        txn, partition, inv.to_bytes(), 1, messages.MessageType.SLEEP_COMMAND, 0, sleep.SerializeToString()
    )
    txn.commit()
    rows = _table(
        f"SELECT index, entry_type, raw_length, name, sleep_wakeup_at FROM sys_journal WHERE id = '{inv}'",
        store,
    )
    assert [(r["index"], r["entry_type"], r["raw_length"]) for r in rows] == [
        (0, journal.entry_type_name(messages.MessageType.INPUT_COMMAND), len(big)),
        (1, "Command: Sleep", len(sleep.SerializeToString())),
    ]
    assert rows[1]["name"] == "nap"
    assert _plain(rows[1]["sleep_wakeup_at"]) == 1_700_000_000_000
    [raw] = _table(f"SELECT raw FROM sys_journal WHERE id = '{inv}' AND index = 0", store)
    assert raw["raw"] == big


def test_payloads_enter_the_engine_as_views_and_leave_it_as_binary(store: Database) -> None:
    """DataFusion sorts views of the journal's payloads, not copies of them in its own allocator
    (which kept 60 MB after sorting two 30 MiB entries); the answer types them as before."""
    inv = InvocationId.generate(12)
    partition = partition_of(inv.partition_key, NUM_PARTITIONS)
    txn = Transaction(store)
    status.put(txn, partition, inv.to_bytes(), _random_status(random.Random(2)))
    payloads = [bytes([n]) * 200_000 for n in range(3)]
    for index, payload in enumerate(payloads):
        journal_store.append(
            txn, partition, inv.to_bytes(), index, messages.MessageType.INPUT_COMMAND, 0, payload
        )
    txn.commit()
    sql = f"SELECT index, raw, arrow_typeof(raw) AS typed FROM sys_journal WHERE id = '{inv}' ORDER BY index DESC"
    result = engine.execute(sql, _sources(store))
    assert result.schema.field("raw").type == pa.large_binary()
    rows = pa.Table.from_batches(list(result.answer()), schema=result.schema).to_pylist()
    assert [(r["index"], r["raw"], r["typed"]) for r in rows] == [
        (index, payloads[index], "BinaryView") for index in (2, 1, 0)
    ]


def test_a_journal_joined_with_filtered_invocations_reads_only_their_entries(store: Database) -> None:
    wanted, other = InvocationId.generate(21), InvocationId.generate(22)
    txn = Transaction(store)
    for inv, handler in ((wanted, "echo"), (other, "greet")):
        partition = partition_of(inv.partition_key, NUM_PARTITIONS)
        status.put(txn, partition, inv.to_bytes(), _random_status(random.Random(2)))
        st = status.get(txn, partition, inv.to_bytes())
        assert st is not None
        st.handler = handler
        status.put(txn, partition, inv.to_bytes(), st)
        journal_store.append(txn, partition, inv.to_bytes(), 0, messages.MessageType.INPUT_COMMAND, 0, b"x")
    txn.commit()
    sql = (
        "SELECT j.id, count(j.raw) AS n FROM sys_journal j JOIN sys_invocation i ON i.id = j.id "
        "WHERE i.target_handler_name = 'echo' GROUP BY j.id"
    )
    plan = engine._context(_sources(store), set(), {}).sql(sql).optimized_logical_plan()
    assert pushdown.id_sources(plan)["sys_journal"] == "sys_invocation_status"
    assert _table(sql, store) == [{"id": str(wanted), "n": 1}]
    computed = "SELECT j.id FROM sys_journal j JOIN (SELECT target AS id FROM sys_invocation_status) s ON s.id = j.id"
    plan = engine._context(_sources(store), set(), {}).sql(computed).optimized_logical_plan()
    assert "sys_journal" not in pushdown.id_sources(plan)  # that `id` is not an invocation id


def test_state_of_one_object_is_read_from_its_key_range_only(store: Database) -> None:
    from restate_server.ids import partition_key_for
    from restate_server.storage import state

    for key in ("k1", "k2"):
        txn = Transaction(store)
        state.put(txn, partition_of(partition_key_for(key), NUM_PARTITIONS), "Counter", key, b"count", b"1")
        txn.commit()
    sql = "SELECT service_key, key FROM state WHERE service_name = 'Counter' AND service_key = 'k2'"
    plan = engine._context(_sources(store), set(), {}).sql(sql).optimized_logical_plan()
    read = pushdown.scans(plan)["state"]
    assert (read.service, read.service_key) == ("Counter", "k2")
    rows = list(tables.KeyedTable("state", keyed.STATE, keyed.build_state).batches(_sources(store), read))
    assert sum(b.num_rows for b in rows) == 1
    assert _table(sql, store) == [{"service_key": "k2", "key": "count"}]


def test_count_star_counts_keys_without_reading_a_row(
    store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(store, 150)

    def unread(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a row was read")

    monkeypatch.setattr(Database, "scan_chunks", unread)
    monkeypatch.setattr(Database, "scan_value_chunks", unread)
    assert _table("SELECT count(*) AS n FROM sys_invocation", store) == [{"n": 150}]
    assert len(_table("SELECT 1 AS one FROM sys_invocation_status LIMIT 7", store)) == 7


def test_ids_are_cut_only_for_the_rows_a_filter_keeps(
    store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _fill(store, 120)
    cut: list[int] = []
    invocation_ids = columns.invocation_ids

    def counted(raw: Any) -> Any:
        cut.append(len(raw))
        return invocation_ids(raw)

    monkeypatch.setattr(columns, "invocation_ids", counted)
    rows = _table("SELECT id FROM sys_invocation WHERE target_service_name = 'Greeter'", store)
    greeters = {i for i, row in expected.items() if row["target_service_name"] == "Greeter"}
    assert {r["id"] for r in rows} == greeters
    assert sum(cut) == len(greeters) < 120
