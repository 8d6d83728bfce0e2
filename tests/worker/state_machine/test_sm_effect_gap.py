"""An effect that starts past the journal's end follows one whose append failed: it is dropped whole."""

from __future__ import annotations

from restate_server.protocol import protocol_pb2 as pb
from restate_server.storage.status import Status
from restate_server.worker import actions as act
from sm_env import TestEnv, command, effect, end_with, invoke
from sm_matchers import of_type


def test_an_effect_after_a_lost_one_is_dropped_with_its_terminal(env: TestEnv) -> None:
    record = invoke()
    env.apply(record)
    inv = record.invocation_id
    # the attempt proposed SetState at command 1 (lost: its append failed), then Output + End at 2
    assert env.apply(end_with(inv, b"too early", first=2)) == []
    st = env.must_status(inv)
    assert (st.status, st.commands) == (Status.INVOKED, 1)  # still running: the retry replays from 1
    # the retried attempt proposes from the journal's end
    [done] = of_type(env.apply(end_with(inv, b"done", first=1)), act.InvocationCompleted)
    assert done.invocation_id == inv


def test_an_effect_at_the_journal_end_is_applied(env: TestEnv) -> None:
    record = invoke("Counter", key="a")
    env.apply(record)
    set_state = command(pb.SetStateCommandMessage(key=b"k", value=pb.Value(content=b"v")))
    env.apply(effect(record.invocation_id, set_state, first=1))
    assert env.must_status(record.invocation_id).commands == 2
