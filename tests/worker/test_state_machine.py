"""The partition state machine at its seam: records in, store rows and actions out.

Runs on a real partition store in a temporary directory; the last test replays one log into two
fresh stores and checks they end up identical (determinism is what makes crash recovery safe).
"""

from __future__ import annotations

from pathlib import Path

from restate_server.ids import InvocationId, partition_key_for
from restate_server.log.records import Invoke, InvokerEffect, Record, Source, TimerFired
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.rocksdb import Database
from restate_server.storage import inbox, status, timers
from restate_server.storage.transaction import Transaction
from restate_server.worker import actions as act
from restate_server.worker.state_machine import Context, apply

PARTITION = 0


def _lookup(name: str) -> tuple[str, dict[str, str | None]] | None:
    return ("VirtualObject", {"add": "Exclusive", "get": "Shared"}) if name == "Counter" else None


def _invoke(n: int, handler: str = "add", key: str = "k") -> Invoke:
    inv = InvocationId.deterministic(partition_key_for(key), "test", str(n)).to_bytes()
    return Invoke(
        invocation_id=inv,
        service="Counter",
        handler=handler,
        key=key,
        service_ty="VirtualObject",
        handler_ty="Exclusive" if handler == "add" else "Shared",
        headers=[],
        body=b"1",
        created_at=1000 + n,
        source=Source(kind="ingress"),
        journal_retention=0,
    )


def _output_end(inv: bytes, value: bytes, first_command: int = 1) -> InvokerEffect:
    output = pb.OutputCommandMessage(value=pb.Value(content=value)).SerializeToString()
    return InvokerEffect(
        invocation_id=inv,
        first_command_index=first_command,
        entries=[(T.OUTPUT_COMMAND, 0, output)],
        terminal=["end"],
        pin=("dp_x", 6),
        now=2000,
    )


def _apply(db: Database, records: list[Record]) -> list[act.Action]:
    ctx = Context(Transaction(db), PARTITION, 1, _lookup, now=1000)
    for record in records:
        apply(ctx, record)
    ctx.flush()
    ctx.txn.commit()
    return ctx.actions


def test_exclusive_invocations_queue_per_key_and_run_in_order(tmp_path: Path) -> None:
    db = Database(tmp_path / "db")
    first, second, shared = _invoke(1), _invoke(2), _invoke(3, handler="get")
    actions = _apply(db, [first, second, shared])
    started = [a.invocation_id for a in actions if isinstance(a, act.StartAttempt)]
    assert started == [first.invocation_id, shared.invocation_id]  # shared handlers skip the lock
    txn = Transaction(db)
    assert status.get(txn, PARTITION, second.invocation_id).status == status.INBOXED  # type: ignore[union-attr]
    assert inbox.lock_holder(txn, PARTITION, "Counter", "k") == first.invocation_id

    actions = _apply(db, [_output_end(first.invocation_id, b"1")])
    completed = [a for a in actions if isinstance(a, act.InvocationCompleted)]
    assert completed[0].invocation_id == first.invocation_id
    assert completed[0].result == ["value", b"1"]
    assert [a.invocation_id for a in actions if isinstance(a, act.StartAttempt)] == [second.invocation_id]
    assert inbox.lock_holder(Transaction(db), PARTITION, "Counter", "k") == second.invocation_id


def test_duplicate_commands_from_a_retried_attempt_are_dropped(tmp_path: Path) -> None:
    db = Database(tmp_path / "db")
    record = _invoke(1)
    _apply(db, [record])
    sleep = pb.SleepCommandMessage(wake_up_time=5000, result_completion_id=1).SerializeToString()
    effect = InvokerEffect(
        invocation_id=record.invocation_id,
        first_command_index=1,
        entries=[(T.SLEEP_COMMAND, 0, sleep)],
        now=1500,
    )
    actions = _apply(db, [effect, effect])
    timer_actions = [a for a in actions if isinstance(a, act.RegisterTimer)]
    assert len(timer_actions) == 1
    st = status.get(Transaction(db), PARTITION, record.invocation_id)
    assert st is not None
    assert st.commands == 2
    assert st.journal_length == 2
    # the timer fires: a sleep completion is journaled and pushed to the running attempt
    actions = _apply(db, [TimerFired(timer_key=timer_actions[0].key, now=5000)])
    forwarded = [a for a in actions if isinstance(a, act.ForwardNotification)]
    assert [(a.type, a.journal_index) for a in forwarded] == [(T.SLEEP_COMPLETION, 2)]
    assert timers.all_timers(Transaction(db), PARTITION) == []


def test_replaying_the_same_log_gives_the_same_store(tmp_path: Path) -> None:
    records: list[Record] = [_invoke(1), _invoke(2), _invoke(3, handler="get")]
    records.append(_output_end(records[0].invocation_id, b"1"))  # type: ignore[attr-defined]
    records.append(_output_end(records[2].invocation_id, b"0"))  # type: ignore[attr-defined]
    dumps = []
    for name in ("a", "b"):
        db = Database(tmp_path / name)
        for record in records:  # one record per transaction, as a replay after a crash would
            _apply(db, [record])
        dumps.append(list(db.scan(b"\x00", b"\xff")))
        db.close()
    assert dumps[0] == dumps[1]
    assert len(dumps[0]) > 2
