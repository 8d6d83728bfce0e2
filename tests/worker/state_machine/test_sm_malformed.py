"""Malformed input: a record that cannot be applied fails its invocation (571), never the partition.

Every command the state machine parses gets a payload that does not decode; the failing record
must leave no writes behind, other invocations in the same batch must not notice, and the same
log must give the same store on every replay.
"""

from __future__ import annotations

import logging

import pytest
from restate_server.ids import InvocationId
from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.storage import journal, keys, status
from restate_server.storage.status import Status
from restate_server.storage.transaction import Transaction
from restate_server.worker import actions as act
from restate_server.worker.state_machine import transitions
from sm_env import DAY_MS, TestEnv, call, command, effect, invoke, raw, suspended
from sm_matchers import aborted, completed, outcomes, started

GARBAGE = b"\xff\xff\xff\xff"  # an unterminated varint: no protobuf message decodes from it
PARSED = {
    T.OUTPUT_COMMAND: "OutputCommandMessage",
    T.GET_LAZY_STATE_COMMAND: "GetLazyStateCommandMessage",
    T.GET_LAZY_STATE_KEYS_COMMAND: "GetLazyStateKeysCommandMessage",
    T.SET_STATE_COMMAND: "SetStateCommandMessage",
    T.CLEAR_STATE_COMMAND: "ClearStateCommandMessage",
    T.GET_PROMISE_COMMAND: "GetPromiseCommandMessage",
    T.PEEK_PROMISE_COMMAND: "PeekPromiseCommandMessage",
    T.COMPLETE_PROMISE_COMMAND: "CompletePromiseCommandMessage",
    T.SLEEP_COMMAND: "SleepCommandMessage",
    T.CALL_COMMAND: "CallCommandMessage",
    T.ONE_WAY_CALL_COMMAND: "OneWayCallCommandMessage",
    T.SEND_SIGNAL_COMMAND: "SendSignalCommandMessage",
    T.COMPLETE_AWAKEABLE_COMMAND: "CompleteAwakeableCommandMessage",
    T.PROPOSE_RUN_COMPLETION: "ProposeRunCompletionMessage",
}
SET_A = command(pb.SetStateCommandMessage(key=b"a", value=pb.Value(content=b"1")))


def _object(env: TestEnv, n: int, key: str = "k") -> bytes:
    record = invoke("Counter", "add", n=n, key=key, completion_retention=DAY_MS, journal_retention=DAY_MS)
    env.apply(record)
    return record.invocation_id


def _violation(actions: list[act.Action], inv: bytes) -> str:
    result = completed(actions)[inv]
    assert isinstance(result, rec.Failure)
    assert result.code == 571
    return result.message


@pytest.mark.parametrize("type_", list(PARSED), ids=[PARSED[t] for t in PARSED])
def test_a_command_that_does_not_decode_fails_only_its_invocation(env: TestEnv, type_: T) -> None:
    bad, good_before, good_after = _object(env, 1), _object(env, 2, "k2"), _object(env, 3, "k3")
    set_b = command(pb.SetStateCommandMessage(key=b"b", value=pb.Value(content=b"2")))
    actions = env.apply(
        effect(good_before, SET_A),
        effect(bad, SET_A, raw(type_, GARBAGE)),  # the SetState before the garbage must not stay
        effect(good_after, set_b),
    )
    message = _violation(actions, bad)
    assert PARSED[type_] in message
    assert aborted(actions) == [bad]
    st = env.must_status(bad)
    assert (st.status, st.result) == (Status.COMPLETED, rec.Failure(code=571, message=message))
    assert env.journal_types(bad) == [T.INPUT_COMMAND]
    assert env.state("Counter", "k") == {}
    assert env.state("Counter", "k2") == {b"a": b"1"}
    assert env.state("Counter", "k3") == {b"b": b"2"}
    assert env.timers() == []
    assert env.outbox() == []


def test_the_failed_invocation_releases_its_key_and_answers_its_caller(env: TestEnv) -> None:
    caller = InvocationId.deterministic(3, "caller").to_bytes()
    holder = invoke("Counter", "add", n=1, key="k", response_to=(caller, 2))
    queued = invoke("Counter", "add", n=2, key="k")
    env.apply(holder, queued)
    actions = env.apply(effect(holder.invocation_id, raw(T.SET_STATE_COMMAND, GARBAGE)))
    assert started(actions) == [queued.invocation_id]
    [response] = [a for a in actions if isinstance(a, act.NewOutboxMessage)]
    decoded = rec.decode(response.record)
    assert isinstance(decoded, rec.InvocationResponse)
    assert (decoded.invocation_id, decoded.completion_id) == (caller, 2)
    assert isinstance(decoded.result, rec.Failure)
    assert decoded.result.code == 571


def test_a_record_that_fails_an_inboxed_invocation_takes_it_out_of_the_inbox(env: TestEnv) -> None:
    holder, queued = _object(env, 1), _object(env, 2)
    # a response whose notification type carries no result: building the notification fails
    odd = rec.InvocationResponse(
        invocation_id=queued, completion_id=1, result=rec.Void(), notification_type=0x8000
    )
    actions = env.apply(odd)
    assert "internal error" in _violation(actions, queued)
    assert aborted(actions) == []
    assert started(env.apply(effect(holder, terminal=rec.Ended()))) == []


def test_state_commands_in_a_service_without_state_are_a_protocol_violation(env: TestEnv) -> None:
    record = invoke("Greeter")
    env.apply(record)
    message = _violation(env.apply(effect(record.invocation_id, SET_A)), record.invocation_id)
    assert "Greeter is a service without state" in message


def test_a_suspension_that_waits_on_nothing_is_a_protocol_violation(env: TestEnv) -> None:
    inv = _object(env, 1)
    message = _violation(env.apply(effect(inv, SET_A, terminal=suspended())), inv)
    assert "SuspensionMessage waits on nothing" in message
    assert env.state("Counter", "k") == {}


def test_malformed_records_do_not_decode() -> None:
    good = rec.encode(effect(b"\x01" * 24, terminal=rec.Ended()))
    with pytest.raises(rec.RecordDecodeError):
        rec.decode(good.replace(b"\xa3end", b"\xa3eNd"))  # an unknown terminal
    with pytest.raises(rec.RecordDecodeError):
        rec.decode(b"\x93\x63\x00\xc0")  # kind 99
    with pytest.raises(rec.RecordDecodeError):
        rec.decode(GARBAGE)
    suspension = rec.encode(effect(b"\x01" * 24, terminal=suspended(1)))
    with pytest.raises(rec.RecordDecodeError):
        rec.decode(suspension.replace(b"\x91\x01", b"\x91\xa1x"))  # a completion id that is a string


def test_a_record_for_an_unknown_invocation_changes_nothing(env: TestEnv) -> None:
    unknown = InvocationId.deterministic(1, "nobody").to_bytes()
    before = env.dump()
    records: list[rec.Record] = [
        effect(unknown, raw(T.SET_STATE_COMMAND, GARBAGE), terminal=rec.Ended()),
        rec.InvocationResponse(invocation_id=unknown, completion_id=1, result=rec.Void()),
        rec.Terminate(invocation_id=unknown, mode="cancel", submit_request=1),
    ]
    actions = env.apply(*records)
    assert outcomes(actions) == [act.Outcome.NOT_FOUND]
    assert env.dump() == before


def test_an_invalid_transition_fails_the_invocation(env: TestEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    table = {
        pair: to
        for pair, to in transitions.TRANSITIONS.items()
        if pair != (Status.INVOKED, transitions.Event.SUSPEND)
    }
    monkeypatch.setattr(transitions, "TRANSITIONS", table)
    inv = _object(env, 1)
    message = _violation(env.apply(effect(inv, SET_A, terminal=suspended(1))), inv)
    assert message == "Protocol violation: cannot suspend an invocation that is invoked"
    assert env.state("Counter", "k") == {}


def test_an_internal_error_fails_the_invocation_with_a_stable_message(
    env: TestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    inv = _object(env, 1)
    # a corrupt store: a journaled call that does not decode trips the kill's walk over the calls
    txn = Transaction(env.db)
    journal.append(txn, env.partition, inv, 1, T.CALL_COMMAND, 0, GARBAGE)
    st = env.must_status(inv)
    st.journal_length, st.commands = 2, 2
    status.put(txn, env.partition, inv, st)
    txn.commit()
    with caplog.at_level(logging.ERROR):
        actions = env.apply(rec.Terminate(invocation_id=inv, mode="kill", submit_request=9))
    assert _violation(actions, inv) == "internal error applying a Terminate record"
    [outcome] = [a for a in actions if isinstance(a, act.SubmitOutcome)]
    assert (outcome.outcome, outcome.result) == (act.Outcome.COMPLETED, completed(actions)[inv])
    assert any(r.exc_info is not None for r in caplog.records)
    assert env.lock_holder("Counter", "k") is None


def test_a_record_that_cannot_fail_anything_is_skipped_and_the_next_one_applies(
    env: TestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    inv = _object(env, 1)
    env.apply(effect(inv, call("Greeter", "greet")))
    short_timer = keys.table(keys.TIMER, 0) + b"short"  # a timer row whose key does not parse
    txn = Transaction(env.db)
    txn.put(short_timer, b"")
    txn.commit()
    before = env.dump()
    with caplog.at_level(logging.ERROR):
        actions = env.apply(
            rec.PatchState(service="Counter", key="k", new_state={1: b"x"}),  # type: ignore[dict-item]
            rec.TimerFired(timer_key=short_timer),
        )
    assert actions == []
    assert env.dump() == before
    assert "skipped a PatchState record" in caplog.text
    assert "skipped a TimerFired record" in caplog.text
    env.apply(rec.TruncateOutbox(up_to_seq=0))
    assert env.outbox() == []


def test_an_unknown_record_type_is_skipped(env: TestEnv, caplog: pytest.LogCaptureFixture) -> None:
    class Stray(rec.Record):
        """Not a record kind the codec or the state machine knows."""

    before = env.dump()
    with caplog.at_level(logging.ERROR):
        assert env.apply(Stray()) == []
    assert env.dump() == before
    assert "unknown record type Stray" in caplog.text


def test_a_record_with_a_malformed_envelope_is_skipped(
    env: TestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    inv = _object(env, 1)
    bad_dedup = rec.InvocationResponse(
        invocation_id=inv, completion_id=1, result=rec.Void(), dedup=(b"x", "1")
    )  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR):
        env.apply(bad_dedup, effect(inv, SET_A))
    assert "skipped a InvocationResponse record: malformed envelope" in caplog.text
    assert env.must_status(inv).completed_ids == []
    assert env.state("Counter", "k") == {b"a": b"1"}
