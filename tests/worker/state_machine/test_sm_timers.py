"""Durable timers: sleeps complete by a fired timer, delayed invocations start by one."""

from __future__ import annotations

from typing import Any

from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.storage import timers
from restate_server.storage.status import Status
from restate_server.worker import actions as act
from sm_env import START, TestEnv, command, effect, end_with, invoke, suspended
from sm_matchers import forwarded, of_type, outcomes, started


def _sleeping(env: TestEnv, wake_at: int, **fields: Any) -> tuple[bytes, bytes]:
    record = invoke(**fields)
    env.apply(record)
    sleep = command(pb.SleepCommandMessage(wake_up_time=wake_at, result_completion_id=1))
    [timer] = of_type(env.apply(effect(record.invocation_id, sleep)), act.RegisterTimer)
    assert (timer.partition, timer.fire_at) == (env.partition, wake_at)
    return record.invocation_id, timer.key


def test_a_fired_sleep_timer_completes_the_sleep_once(env: TestEnv) -> None:
    inv, key = _sleeping(env, START + 5_000)
    assert env.timers() == [key]
    assert timers.parse(key) == (START + 5_000, timers.SLEEP, inv, 1)
    fired = rec.TimerFired(timer_key=key, now=START + 5_000)
    assert forwarded(env.apply(fired)) == [(T.SLEEP_COMPLETION, 2)]
    assert env.timers() == []
    assert env.apply(fired) == []  # fired twice (a new leader re-fires what it found): no-op


def test_a_fired_sleep_resumes_an_invocation_suspended_on_it(env: TestEnv) -> None:
    inv, key = _sleeping(env, START + 5_000)
    env.apply(effect(inv, first=2, terminal=suspended(1)))
    assert started(env.apply(rec.TimerFired(timer_key=key, now=START + 5_000))) == [inv]


def test_a_timer_of_an_invocation_that_completed_is_dropped(env: TestEnv) -> None:
    inv, key = _sleeping(env, START + 5_000, completion_retention=1_000_000)
    env.apply(end_with(inv, b"", first=2))
    assert env.apply(rec.TimerFired(timer_key=key, now=START + 5_000)) == []
    assert env.timers() == []


def test_a_delayed_invoke_is_scheduled_and_started_by_its_timer(env: TestEnv) -> None:
    record = invoke(execute_at=START + 60_000, submit_request=1)
    actions = env.apply(record)
    assert started(actions) == []
    [outcome] = of_type(actions, act.SubmitOutcome)
    assert (outcome.outcome, outcome.execute_at) == (act.Outcome.ACCEPTED, START + 60_000)
    st = env.must_status(record.invocation_id)
    assert (st.status, st.scheduled_at) == (Status.SCHEDULED, START)
    [timer] = of_type(actions, act.RegisterTimer)
    actions = env.apply(rec.TimerFired(timer_key=timer.key, now=START + 60_000))
    assert started(actions) == [record.invocation_id]
    assert env.must_status(record.invocation_id).status == Status.INVOKED


def test_a_delayed_invoke_on_a_locked_key_waits_in_the_inbox_when_it_fires(env: TestEnv) -> None:
    holder = invoke("Counter", "add", n=1, key="k")
    delayed = invoke("Counter", "add", n=2, key="k", execute_at=START + 60_000)
    [timer] = of_type(env.apply(holder, delayed), act.RegisterTimer)
    assert started(env.apply(rec.TimerFired(timer_key=timer.key, now=START + 60_000))) == []
    assert env.must_status(delayed.invocation_id).status == Status.INBOXED
    assert started(env.apply(end_with(holder.invocation_id, b""))) == [delayed.invocation_id]


def test_an_execution_time_in_the_past_starts_at_once(env: TestEnv) -> None:
    record = invoke(execute_at=START - 1, submit_request=1)
    actions = env.apply(record)
    assert started(actions) == [record.invocation_id]
    assert outcomes(actions) == [act.Outcome.ACCEPTED]
