"""Determinism: the same log gives the same store and actions, however it is cut into batches.

This is what makes a crash safe (a replay re-applies the log suffix into a store that saw a
different batching) and what keeps replicas equal. The log below goes through most record kinds,
including one that fails its invocation.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from restate_server.ids import InvocationId
from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.storage import keys, timers
from restate_server.worker import actions as act
from sm_env import DAY_MS, START, TestEnv, call, command, effect, end_with, invoke, raw, suspended, value
from sm_matchers import of_type

RUN = InvocationId.for_workflow("Signup", "u1").to_bytes()


def _set(key: bytes, content: bytes) -> tuple[int, int, bytes]:
    return command(pb.SetStateCommandMessage(key=key, value=pb.Value(content=content)))


def _first_records() -> list[rec.Record]:
    a, b, reader = (
        invoke("Counter", h, n=n, key="k", completion_retention=DAY_MS)
        for n, h in ((1, "add"), (2, "add"), (3, "get"))
    )
    parent = invoke(n=4, journal_retention=DAY_MS)
    sleeper = invoke(n=5)
    bad = invoke("Counter", "add", n=6, key="bad")
    delayed = invoke(n=7, execute_at=START + 50_000)
    queued = invoke("Counter", "add", n=9, key="k")
    sleep = command(pb.SleepCommandMessage(wake_up_time=START + 9_000, result_completion_id=1))
    complete = command(
        pb.CompletePromiseCommandMessage(
            key="p", completion_value=pb.Value(content=b"v"), result_completion_id=1
        )
    )
    return [
        rec.AnnounceLeader(leader_epoch=1, epoch=1),
        a,
        b,
        reader,
        parent,
        sleeper,
        bad,
        delayed,
        invoke("Signup", "run", inv=RUN, key="u1", completion_retention=DAY_MS),
        invoke("Signup", "click", n=8, key="u1"),
        effect(a.invocation_id, _set(b"x", b"1"), _set(b"y", b"2"), epoch=1),
        effect(
            parent.invocation_id,
            call("Counter", "add", key="k", cid=2),
            call("Greeter", "greet", id_idx=3, cid=4),
            terminal=suspended(2, 4),
            epoch=1,
        ),
        effect(sleeper.invocation_id, sleep, terminal=suspended(1), epoch=1),
        effect(bad.invocation_id, _set(b"z", b"9"), raw(T.SLEEP_COMMAND, b"\xff\xff"), epoch=1),
        effect(RUN, complete, _set(b"s", b"1"), epoch=1),
        effect(
            invoke("Signup", "click", n=8, key="u1").invocation_id,
            command(pb.GetPromiseCommandMessage(key="p", result_completion_id=1)),
            epoch=1,
        ),
        end_with(a.invocation_id, b"a-done", first=3, now=START + 200),
        rec.Pause(invocation_id=reader.invocation_id, submit_request=1),
        rec.Resume(invocation_id=reader.invocation_id, submit_request=2),
        rec.NotifySignal(
            invocation_id=sleeper.invocation_id, signal_index=17, signal_name=None, result=value(b"s")
        ),
        rec.TimerFired(
            timer_key=keys.timer(0, START + 9_000, timers.SLEEP, timers.ident(sleeper.invocation_id, 1)),
            now=START + 9_000,
        ),
        queued,
        rec.Terminate(invocation_id=b.invocation_id, mode="cancel", submit_request=3),
        rec.Terminate(invocation_id=queued.invocation_id, mode="cancel"),
        rec.PatchState(service="Counter", key="other", new_state={b"q": b"1"}),
        rec.AnnounceLeader(leader_epoch=2, epoch=2),
        effect(reader.invocation_id, _set(b"stale", b"1"), epoch=1),  # fenced
        rec.TimerFired(
            timer_key=keys.timer(
                0, START + 50_000, timers.DELAYED_INVOKE, timers.ident(delayed.invocation_id)
            ),
            now=START + 50_000,
        ),
        end_with(RUN, b"run-done", first=3, now=START + 60_000),
        rec.Purge(invocation_ids=[a.invocation_id], now=START + 70_000, submit_request=4),
        rec.Terminate(invocation_id=parent.invocation_id, mode="kill", now=START + 70_000),
        rec.TrimStateHistory(now=START + 80_000, retention={"Counter": 75_000, "Signup": DAY_MS}),
        rec.PatchState(service="Counter", key="k", new_state={b"after": b"trim"}, now=START + 80_001),
    ]


def _log(tmp_path: Path) -> list[rec.Record]:
    """The first records, then what they sent through the outbox (delivered once, then again), then a truncation."""
    first = _first_records()
    scratch = TestEnv(tmp_path / "scratch")
    try:
        messages = of_type(scratch.apply(*first), act.NewOutboxMessage)
    finally:
        scratch.close()
    delivered: list[rec.Record] = []
    for message in messages:
        record = rec.decode(message.record)
        record.dedup = (0, message.seq)
        delivered.append(record)
    assert len(delivered) >= 4
    return [*first, *delivered, *delivered[:2], rec.TruncateOutbox(up_to_seq=messages[-1].seq, epoch=2)]


def _replay(
    path: Path, log: list[rec.Record], batch: int
) -> tuple[list[tuple[bytes, bytes]], list[act.Action]]:
    env = TestEnv(path)
    try:
        actions = [a for i in range(0, len(log), batch) for a in env.apply(*log[i : i + batch])]
        return env.dump(), actions
    finally:
        env.close()


def test_one_batch_equals_record_by_record(tmp_path: Path) -> None:
    log = _log(tmp_path)
    whole, whole_actions = _replay(tmp_path / "whole", log, len(log))
    single, single_actions = _replay(tmp_path / "single", log, 1)
    assert whole == single
    assert whole_actions == single_actions
    assert len(whole) > 20


@pytest.mark.parametrize("batch", [3, 7], ids=["batches-of-3", "batches-of-7"])
def test_one_log_replayed_into_two_fresh_stores_gives_identical_stores(tmp_path: Path, batch: int) -> None:
    log = _log(tmp_path)
    first, _ = _replay(tmp_path / "a", log, batch)
    second, _ = _replay(tmp_path / "b", log, batch)
    assert first == second
    assert first == _replay(tmp_path / "c", log, len(log))[0]


def test_the_scripted_log_reaches_the_cases_it_is_meant_to(tmp_path: Path) -> None:
    log = _log(tmp_path)
    _, actions = _replay(tmp_path / "store", log, len(log))
    results = {a.invocation_id: a.result for a in of_type(actions, act.InvocationCompleted)}
    failures = [r for r in results.values() if isinstance(r, rec.Failure)]
    assert any(f.code == 571 for f in failures)  # the bad sleep
    assert rec.Failure(code=409, message="cancelled") in failures
    assert rec.Failure(code=409, message="killed") in failures
    assert value(b"a-done") in results.values()


def test_the_state_history_is_part_of_the_replayed_store(tmp_path: Path) -> None:
    log = _log(tmp_path)
    rows, _ = _replay(tmp_path / "store", log, 5)
    tables = {key[:1] for key, _ in rows}
    # events, their age index, per-key versions, per-service retentions and a trim watermark
    assert {keys.HISTORY, keys.HISTORY_AGE, keys.STATE_VERSION, keys.HISTORY_RETENTION} <= tables
    assert keys.HISTORY_TRIMMED in tables
