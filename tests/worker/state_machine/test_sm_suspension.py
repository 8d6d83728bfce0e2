"""Suspension and resumption: an invocation parks on completions or signals and wakes on the first."""

from __future__ import annotations

from restate_server.log import records as rec
from restate_server.protocol.messages import MessageType as T
from restate_server.storage.status import Status
from restate_server.worker import actions as act
from sm_env import START, TestEnv, call, effect, invoke, suspended, value
from sm_matchers import started


def _calling_and_suspended(env: TestEnv, suspension: rec.Suspended) -> bytes:
    parent = invoke()
    env.apply(parent)
    env.apply(effect(parent.invocation_id, call("Greeter", "greet", cid=2), terminal=suspension))
    return parent.invocation_id


def test_suspended_invocation_resumes_when_the_awaited_completion_arrives(env: TestEnv) -> None:
    inv = _calling_and_suspended(env, suspended(2))
    st = env.must_status(inv)
    assert (st.status, st.waiting) == (Status.SUSPENDED, suspended(2))

    actions = env.apply(rec.InvocationResponse(invocation_id=inv, completion_id=2, result=value(b"r")))
    assert started(actions) == [inv]
    assert not [a for a in actions if isinstance(a, act.ForwardNotification)]  # the new attempt replays it
    st = env.must_status(inv)
    assert (st.status, st.waiting) == (Status.INVOKED, None)
    assert env.journal_types(inv)[-1] == T.CALL_COMPLETION


def test_a_notification_nobody_awaits_does_not_resume(env: TestEnv) -> None:
    inv = _calling_and_suspended(env, suspended(5))
    actions = env.apply(rec.InvocationResponse(invocation_id=inv, completion_id=2, result=value(b"r")))
    assert started(actions) == []
    assert env.must_status(inv).status == Status.SUSPENDED
    assert 2 in env.must_status(inv).completed_ids


def test_suspending_on_a_completion_that_already_arrived_resumes_at_once(env: TestEnv) -> None:
    parent = invoke()
    env.apply(parent)
    env.apply(
        effect(parent.invocation_id, call("Greeter", "greet", cid=2)),
        rec.InvocationResponse(invocation_id=parent.invocation_id, completion_id=2, result=value(b"r")),
    )
    actions = env.apply(effect(parent.invocation_id, first=2, terminal=suspended(2)))
    assert started(actions) == [parent.invocation_id]
    assert env.must_status(parent.invocation_id).status == Status.INVOKED


def test_suspended_invocation_resumes_on_an_awaited_signal_index(env: TestEnv) -> None:
    inv = _calling_and_suspended(env, suspended(signals=(17,)))
    actions = env.apply(
        rec.NotifySignal(invocation_id=inv, signal_index=17, signal_name=None, result=value(b"s"))
    )
    assert started(actions) == [inv]
    assert env.journal_types(inv)[-1] == T.SIGNAL_NOTIFICATION


def test_suspended_invocation_resumes_on_an_awaited_signal_name(env: TestEnv) -> None:
    inv = _calling_and_suspended(env, suspended(names=("approved",)))
    other = rec.NotifySignal(invocation_id=inv, signal_index=None, signal_name="other", result=rec.Void())
    assert started(env.apply(other)) == []
    named = rec.NotifySignal(invocation_id=inv, signal_index=None, signal_name="approved", result=rec.Void())
    assert started(env.apply(named)) == [inv]


def test_a_late_suspension_of_a_suspended_invocation_replaces_what_it_waits_for(env: TestEnv) -> None:
    inv = _calling_and_suspended(env, suspended(2))
    env.apply(effect(inv, first=2, terminal=suspended(3), now=START + 200))
    st = env.must_status(inv)
    assert (st.status, st.waiting) == (Status.SUSPENDED, suspended(3))


def test_a_suspended_invocation_can_still_end(env: TestEnv) -> None:
    inv = _calling_and_suspended(env, suspended(2))
    actions = env.apply(effect(inv, first=2, terminal=rec.Ended()))
    assert [a.invocation_id for a in actions if isinstance(a, act.InvocationCompleted)] == [inv]
