"""State history: every applied record that changes an object's state writes one event, with the state.

Events carry the record's time and log position, name what made the change, and count versions per
state key; `TrimStateHistory` records set each service's retention and delete expired events.
"""

from __future__ import annotations

import pytest
from restate_server.ids import InvocationId
from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.rocksdb import Database
from restate_server.storage import state_history
from restate_server.storage.state_history import Operation
from restate_server.worker.state_machine import history
from sm_env import DAY_MS, START, TestEnv, command, effect, end_with, invoke, raw


def _set(key: bytes, content: bytes) -> tuple[int, int, bytes]:
    return command(pb.SetStateCommandMessage(key=key, value=pb.Value(content=content)))


def _clear(key: bytes) -> tuple[int, int, bytes]:
    return command(pb.ClearStateCommandMessage(key=key))


def _running(env: TestEnv, service: str = "Counter", key: str = "k", n: int = 1) -> bytes:
    record = invoke(service, "add" if service == "Counter" else "run", key=key, n=n)
    env.apply(record)
    return record.invocation_id


def _ops(event: state_history.Event) -> list[tuple[bytes, bytes | None, int]]:
    return [(op.key, op.value, op.version) for op in event.operations]


def test_each_record_that_changes_state_is_one_event_with_versions_per_key(env: TestEnv) -> None:
    inv = _running(env)
    name = str(InvocationId.from_bytes(inv))
    env.apply(effect(inv, _set(b"a", b"1"), _set(b"b", b"2"), _set(b"a", b"3"), now=START + 10))
    env.apply(effect(inv, _clear(b"a"), first=4, now=START + 20))
    env.apply(effect(inv, command(pb.ClearAllStateCommandMessage()), first=5, now=START + 30))
    events = env.history("Counter", "k")
    assert [(e.txn_id, e.commit_ts) for e in events] == [
        (f"{name}/1", START + 10),
        (f"{name}/4", START + 20),
        (f"{name}/5", START + 30),
    ]
    assert _ops(events[0]) == [(b"a", b"1", 1), (b"b", b"2", 1), (b"a", b"3", 2)]
    assert _ops(events[1]) == [(b"a", None, 3)]
    assert _ops(events[2]) == [(b"b", None, 2)]  # clear-all: one operation per key it removed
    assert [e.lsn for e in events] == sorted(e.lsn for e in events)


def test_versions_keep_counting_after_the_key_was_cleared(env: TestEnv) -> None:
    inv = _running(env)
    env.apply(effect(inv, _set(b"a", b"1")))
    env.apply(effect(inv, _clear(b"a"), first=2))
    env.apply(effect(inv, _set(b"a", b"2"), first=3))
    assert [_ops(e) for e in env.history("Counter", "k")] == [
        [(b"a", b"1", 1)],
        [(b"a", None, 2)],
        [(b"a", b"2", 3)],
    ]


def test_records_that_change_no_state_write_no_event(env: TestEnv) -> None:
    inv = _running(env)
    env.apply(effect(inv, _clear(b"never-set"), command(pb.ClearAllStateCommandMessage())))
    env.apply(effect(inv, command(pb.GetLazyStateKeysCommandMessage(result_completion_id=1)), first=3))
    assert env.history("Counter", "k") == []


def test_an_abandoned_record_leaves_no_event(env: TestEnv) -> None:
    inv = _running(env)
    env.apply(effect(inv, _set(b"a", b"1"), raw(T.SLEEP_COMMAND, b"\xff\xff")))
    assert env.state("Counter", "k") == {}
    assert env.history("Counter", "k") == []


def test_an_admin_edit_is_one_event_named_after_its_log_position(env: TestEnv) -> None:
    inv = _running(env)
    env.apply(effect(inv, _set(b"a", b"1"), _set(b"b", b"2")))
    env.apply(end_with(inv, b"done", first=3))  # a patch waits for the invocation holding the key
    env.apply(
        rec.PatchState(service="Counter", key="k", new_state={b"b": b"20", b"c": b"30"}, now=START + 500)
    )
    event = env.history("Counter", "k")[-1]
    assert event.txn_id == f"admin/{env.lsn}"
    assert event.commit_ts == START + 500
    assert _ops(event) == [(b"a", None, 2), (b"b", b"20", 2), (b"c", b"30", 1)]


def test_a_purged_workflow_records_the_clearing_of_its_state(env: TestEnv) -> None:
    run = invoke("Signup", "run", key="u1", completion_retention=DAY_MS)
    env.apply(run)
    env.apply(effect(run.invocation_id, _set(b"s", b"1")))
    env.apply(end_with(run.invocation_id, b"done", first=2))
    env.apply(rec.Purge(invocation_ids=[run.invocation_id], now=START + 900))
    last = env.history("Signup", "u1")[-1]
    assert last.txn_id == f"{InvocationId.from_bytes(run.invocation_id)}/purge"
    assert _ops(last) == [(b"s", None, 2)]


def test_retention_trims_old_events_and_remembers_how_far(env: TestEnv) -> None:
    inv = _running(env)
    for i, now in enumerate((START + 10, START + 20, START + 30)):
        env.apply(effect(inv, _set(b"a", b"%d" % i), first=i + 1, now=now))
    env.apply(rec.TrimStateHistory(now=START + 40, retention={"Counter": 15}))
    assert [e.commit_ts for e in env.history("Counter", "k")] == [START + 30]
    assert state_history.trimmed_through(env.db, 0, "Counter", "k") == START + 20
    assert state_history.oldest_ts(env.db, 0, "Counter") == START + 30


def test_retention_zero_turns_history_off_and_removes_it(env: TestEnv) -> None:
    inv = _running(env)
    env.apply(effect(inv, _set(b"a", b"1")))
    env.apply(rec.TrimStateHistory(now=START + 200, retention={"Counter": 0}))
    env.apply(effect(inv, _set(b"a", b"2"), first=2, now=START + 300))
    assert env.history("Counter", "k") == []
    assert env.state("Counter", "k") == {b"a": b"2"}
    # a later record without the service puts it back to the default: history on
    env.apply(rec.TrimStateHistory(now=START + 400, retention={}))
    env.apply(effect(inv, _set(b"a", b"3"), first=3, now=START + 500))
    assert [e.operations for e in env.history("Counter", "k")] == [
        (Operation(key=b"a", value=b"3", version=2),)
    ]


def test_one_trim_record_deletes_at_most_its_budget(env: TestEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "TRIM_BUDGET", 2)
    inv = _running(env)
    for i in range(5):
        env.apply(effect(inv, _set(b"a", b"%d" % i), first=i + 1, now=START + i))
    env.apply(rec.TrimStateHistory(now=START + 100, retention={"Counter": 1}))
    assert len(env.history("Counter", "k")) == 3
    env.apply(rec.TrimStateHistory(now=START + 100, retention={"Counter": 1}))
    env.apply(rec.TrimStateHistory(now=START + 100, retention={"Counter": 1}))
    assert env.history("Counter", "k") == []


def test_pages_read_from_a_position_to_a_position(env: TestEnv) -> None:
    inv = _running(env)
    for i in range(6):
        env.apply(effect(inv, _set(b"a", b"%d" % i), first=i + 1, now=START + 10 * i))
    db: Database = env.db
    everything = env.history("Counter", "k")
    first, last = everything[1].position, everything[4].position
    page = state_history.page(db, 0, "Counter", "k", first=first, last=last, limit=2)
    assert page == everything[1:3]
    rest = state_history.page(
        db, 0, "Counter", "k", first=(page[-1].commit_ts, page[-1].lsn + 1), last=last, limit=9
    )
    assert rest == everything[3:5]
    assert state_history.newest(db, 0, "Counter", "k") == everything[-1].position
