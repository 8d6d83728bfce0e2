"""Pause and resume: by the admin API, or by the invoker when retries are exhausted."""

from __future__ import annotations

from restate_server.ids import InvocationId
from restate_server.log import records as rec
from restate_server.storage.status import Status
from restate_server.worker import actions as act
from sm_env import TestEnv, call, effect, end_with, invoke, suspended
from sm_matchers import aborted, completed, outcomes, started


def _pause(inv: bytes, request: int = 1) -> rec.Pause:
    return rec.Pause(invocation_id=inv, submit_request=request)


def _resume(inv: bytes, request: int = 1) -> rec.Resume:
    return rec.Resume(invocation_id=inv, submit_request=request)


def test_pause_stops_the_attempt_and_resume_starts_a_new_one(env: TestEnv) -> None:
    record = invoke()
    inv = record.invocation_id
    env.apply(record)
    actions = env.apply(_pause(inv, 1), _pause(inv, 2))
    assert outcomes(actions) == [act.Outcome.OK, act.Outcome.ALREADY_PAUSED]
    assert aborted(actions) == [inv]
    assert env.must_status(inv).status == Status.PAUSED
    assert env.apply(effect(inv, call("Greeter", "greet"))) == []  # a late effect of the stopped attempt

    actions = env.apply(_resume(inv, 3), _resume(inv, 4))
    assert outcomes(actions) == [act.Outcome.OK, act.Outcome.OK]  # the second finds it running
    assert started(actions) == [inv]
    assert env.must_status(inv).status == Status.INVOKED


def test_a_suspended_invocation_can_be_paused_and_resumed(env: TestEnv) -> None:
    record = invoke()
    env.apply(record)
    env.apply(effect(record.invocation_id, call("Greeter", "greet"), terminal=suspended(2)))
    assert outcomes(env.apply(_pause(record.invocation_id))) == [act.Outcome.OK]
    st = env.must_status(record.invocation_id)
    assert (st.status, st.waiting) == (Status.PAUSED, None)
    assert started(env.apply(_resume(record.invocation_id))) == [record.invocation_id]


def test_pause_and_resume_of_invocations_that_are_not_running(env: TestEnv) -> None:
    holder, queued = invoke("Counter", "add", n=1, key="k"), invoke("Counter", "add", n=2, key="k")
    done = invoke(n=3, completion_retention=1_000_000)
    env.apply(holder, queued, done)
    env.apply(end_with(done.invocation_id, b""))
    unknown = InvocationId.deterministic(1, "nobody").to_bytes()
    actions = env.apply(
        _pause(queued.invocation_id, 1),
        _resume(queued.invocation_id, 2),
        _resume(done.invocation_id, 3),
        _pause(unknown, 4),
        _resume(unknown, 5),
    )
    assert outcomes(actions) == [
        act.Outcome.NOT_RUNNING,
        act.Outcome.NOT_COMPLETED,
        act.Outcome.COMPLETED,
        act.Outcome.NOT_FOUND,
        act.Outcome.NOT_FOUND,
    ]


def test_the_invoker_pauses_or_kills_when_retries_are_exhausted(env: TestEnv) -> None:
    paused, killed = invoke(n=1), invoke(n=2)
    env.apply(paused, killed)
    actions = env.apply(
        effect(paused.invocation_id, terminal=rec.Paused(code=500, message="boom")),
        effect(killed.invocation_id, terminal=rec.Killed(code=500, message="boom")),
    )
    assert env.must_status(paused.invocation_id).status == Status.PAUSED
    assert completed(actions) == {killed.invocation_id: rec.Failure(code=500, message="boom")}
