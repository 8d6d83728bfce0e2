"""Idempotency: the same deterministic id again attaches to the first invocation instead of running twice."""

from __future__ import annotations

from typing import Any

from restate_server.ids import InvocationId
from restate_server.log import records as rec
from restate_server.worker import actions as act
from sm_env import DAY_MS, START, TestEnv, end_with, invoke, value
from sm_matchers import of_type, outcomes, sent, started

IDEMPOTENT = InvocationId.for_idempotent_request("Greeter", "greet", "key-1").to_bytes()
CALLER = InvocationId.deterministic(7, "caller").to_bytes()


def _idempotent(**fields: Any) -> rec.Invoke:
    return invoke(inv=IDEMPOTENT, idempotency_key="key-1", completion_retention=DAY_MS, **fields)


def test_a_resubmission_while_running_is_previously_accepted_and_not_started_again(env: TestEnv) -> None:
    actions = env.apply(_idempotent(submit_request=1), _idempotent(submit_request=2))
    assert started(actions) == [IDEMPOTENT]
    assert outcomes(actions) == [act.Outcome.ACCEPTED, act.Outcome.PREVIOUSLY_ACCEPTED]
    assert of_type(actions, act.SubmitOutcome)[1].result is None


def test_a_resubmission_after_completion_gets_the_stored_result(env: TestEnv) -> None:
    env.apply(_idempotent())
    env.apply(end_with(IDEMPOTENT, b"once", now=START + 10))
    [outcome] = of_type(env.apply(_idempotent(submit_request=3)), act.SubmitOutcome)
    assert (outcome.outcome, outcome.result, outcome.expires_at) == (
        act.Outcome.PREVIOUSLY_ACCEPTED,
        value(b"once"),
        START + 10 + DAY_MS,
    )


def test_a_caller_attaching_while_running_gets_the_result_on_completion(env: TestEnv) -> None:
    env.apply(_idempotent())
    assert sent(env.apply(_idempotent(response_to=(CALLER, 4), source=rec.Source(kind="service")))) == []
    [response] = sent(env.apply(end_with(IDEMPOTENT, b"r")))
    assert response == rec.InvocationResponse(invocation_id=CALLER, completion_id=4, result=value(b"r"))


def test_a_caller_arriving_after_completion_is_answered_from_the_stored_result(env: TestEnv) -> None:
    env.apply(_idempotent())
    env.apply(end_with(IDEMPOTENT, b"r"))
    [response] = sent(env.apply(_idempotent(response_to=(CALLER, 4), source=rec.Source(kind="service"))))
    assert response == rec.InvocationResponse(invocation_id=CALLER, completion_id=4, result=value(b"r"))


def test_after_a_purge_the_same_key_runs_again(env: TestEnv) -> None:
    env.apply(_idempotent())
    env.apply(end_with(IDEMPOTENT, b"r"))
    assert outcomes(env.apply(rec.Purge(invocation_ids=[IDEMPOTENT], submit_request=5))) == [act.Outcome.OK]
    actions = env.apply(_idempotent(submit_request=6))
    assert outcomes(actions) == [act.Outcome.ACCEPTED]
    assert started(actions) == [IDEMPOTENT]
