"""Workflows: one run per id, shared handlers beside it, durable promises between them."""

from __future__ import annotations

from typing import Any

from restate_server.ids import InvocationId
from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.worker import actions as act
from sm_env import DAY_MS, TestEnv, command, effect, end_with, invoke, value
from sm_matchers import decode, forwarded, outcomes, sent, started

RUN = InvocationId.for_workflow("Signup", "u1").to_bytes()
CALLER = InvocationId.deterministic(7, "caller").to_bytes()


def _run(**fields: Any) -> rec.Invoke:
    return invoke("Signup", "run", inv=RUN, key="u1", completion_retention=DAY_MS, **fields)


def _click(n: int) -> rec.Invoke:
    return invoke("Signup", "click", n=n, key="u1")


def _get(name: str, cid: int) -> tuple[int, int, bytes]:
    return command(pb.GetPromiseCommandMessage(key=name, result_completion_id=cid))


def _peek(name: str, cid: int) -> tuple[int, int, bytes]:
    return command(pb.PeekPromiseCommandMessage(key=name, result_completion_id=cid))


def _complete(name: str, content: bytes, cid: int) -> tuple[int, int, bytes]:
    return command(
        pb.CompletePromiseCommandMessage(
            key=name, completion_value=pb.Value(content=content), result_completion_id=cid
        )
    )


def _last_note(env: TestEnv, inv: bytes, actions: list[act.Action]) -> object:
    note_type, index = forwarded(actions)[-1]
    return decode(note_type, env.journal(inv)[index].payload)


def test_the_run_holds_the_workflow_lock_and_shared_handlers_run_beside_it(env: TestEnv) -> None:
    click = _click(1)
    actions = env.apply(_run(), click)
    assert started(actions) == [RUN, click.invocation_id]
    assert env.lock_holder("Signup", "u1") == RUN


def test_a_promise_awaited_before_completion_is_delivered_to_the_waiter(env: TestEnv) -> None:
    click = _click(1)
    env.apply(_run(), click)
    assert forwarded(env.apply(effect(click.invocation_id, _get("email", 1)))) == []
    assert env.promise("Signup", "u1", "email") is not None

    actions = env.apply(effect(RUN, _complete("email", b"a@b", 1)))
    notes = forwarded(actions)
    assert [t for t, _ in notes] == [T.COMPLETE_PROMISE_COMPLETION, T.GET_PROMISE_COMPLETION]
    assert _last_note(env, click.invocation_id, actions) == pb.GetPromiseCompletionNotificationMessage(
        completion_id=1, value=pb.Value(content=b"a@b")
    )
    promise = env.promise("Signup", "u1", "email")
    assert promise is not None
    assert (promise.result, promise.waiters) == (value(b"a@b"), [])


def test_a_completed_promise_answers_get_and_peek_at_once_and_cannot_complete_again(env: TestEnv) -> None:
    env.apply(_run())
    env.apply(effect(RUN, _complete("p", b"v", 1)))
    actions = env.apply(effect(RUN, _get("p", 2), first=2))
    assert _last_note(env, RUN, actions) == pb.GetPromiseCompletionNotificationMessage(
        completion_id=2, value=pb.Value(content=b"v")
    )
    actions = env.apply(effect(RUN, _peek("p", 3), first=3))
    assert _last_note(env, RUN, actions) == pb.PeekPromiseCompletionNotificationMessage(
        completion_id=3, value=pb.Value(content=b"v")
    )
    failing = command(
        pb.CompletePromiseCommandMessage(
            key="p", completion_failure=pb.Failure(code=500, message="x"), result_completion_id=4
        )
    )
    actions = env.apply(effect(RUN, failing, first=4))
    assert _last_note(env, RUN, actions) == pb.CompletePromiseCompletionNotificationMessage(
        completion_id=4, failure=pb.Failure(code=409, message="promise was already completed")
    )


def test_peek_of_an_unknown_promise_is_void_and_a_failed_promise_reaches_its_waiters(env: TestEnv) -> None:
    click = _click(1)
    env.apply(_run(), click)
    actions = env.apply(effect(click.invocation_id, _peek("p", 1)))
    assert _last_note(env, click.invocation_id, actions) == pb.PeekPromiseCompletionNotificationMessage(
        completion_id=1, void=pb.Void()
    )
    env.apply(effect(click.invocation_id, _get("p", 2), first=2))
    failing = command(
        pb.CompletePromiseCommandMessage(
            key="p", completion_failure=pb.Failure(code=500, message="no"), result_completion_id=1
        )
    )
    actions = env.apply(effect(RUN, failing))
    assert _last_note(env, click.invocation_id, actions) == pb.GetPromiseCompletionNotificationMessage(
        completion_id=2, failure=pb.Failure(code=500, message="no")
    )


def test_a_waiter_that_completed_meanwhile_is_skipped(env: TestEnv) -> None:
    gone, waiting = _click(1), _click(2)
    env.apply(_run(), gone, waiting)
    env.apply(effect(gone.invocation_id, _get("p", 1)), effect(waiting.invocation_id, _get("p", 1)))
    env.apply(end_with(gone.invocation_id, b"", first=2))
    actions = env.apply(effect(RUN, _complete("p", b"v", 1)))
    assert [t for t, _ in forwarded(actions)] == [T.COMPLETE_PROMISE_COMPLETION, T.GET_PROMISE_COMPLETION]
    assert _last_note(env, waiting.invocation_id, actions) == pb.GetPromiseCompletionNotificationMessage(
        completion_id=1, value=pb.Value(content=b"v")
    )


def test_submitting_the_run_again_is_a_conflict_for_callers_and_a_409_for_services(env: TestEnv) -> None:
    env.apply(_run())
    assert outcomes(env.apply(_run(submit_request=1, is_call=True))) == [act.Outcome.CONFLICT]
    assert outcomes(env.apply(_run(submit_request=2, is_call=False))) == [act.Outcome.PREVIOUSLY_ACCEPTED]
    [response] = sent(env.apply(_run(response_to=(CALLER, 3), source=rec.Source(kind="service"))))
    assert response == rec.InvocationResponse(
        invocation_id=CALLER,
        completion_id=3,
        result=rec.Failure(code=409, message="the workflow method was already invoked"),
    )


def test_a_workflow_without_retention_drops_its_state_and_promises_when_it_ends(env: TestEnv) -> None:
    run = invoke("Signup", "run", inv=RUN, key="u1")
    env.apply(run)
    set_state = command(pb.SetStateCommandMessage(key=b"s", value=pb.Value(content=b"1")))
    env.apply(effect(RUN, set_state, _complete("p", b"v", 1)))
    assert env.state("Signup", "u1") == {b"s": b"1"}
    env.apply(end_with(RUN, b"done", first=3))
    assert env.status(RUN) is None
    assert env.state("Signup", "u1") == {}
    assert env.promise("Signup", "u1", "p") is None
