"""Cancel and kill: graceful cancel by signal, immediate kill, and how both reach child calls."""

from __future__ import annotations

from restate_server.ids import InvocationId
from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.protocol.notifications import CANCEL_SIGNAL_IDX
from restate_server.storage.status import Status
from restate_server.worker import actions as act
from sm_env import START, TestEnv, call, command, effect, end_with, invoke, value
from sm_matchers import aborted, completed, decode, forwarded, of_type, outcomes, sent, started

CANCELLED = rec.Failure(code=409, message="cancelled")
KILLED = rec.Failure(code=409, message="killed")


def _cancel(inv: bytes, request: int = 1) -> rec.Terminate:
    return rec.Terminate(invocation_id=inv, mode="cancel", submit_request=request)


def _kill(inv: bytes, request: int = 1) -> rec.Terminate:
    return rec.Terminate(invocation_id=inv, mode="kill", submit_request=request)


def test_cancel_of_a_running_invocation_sends_it_the_cancel_signal_once(env: TestEnv) -> None:
    record = invoke()
    env.apply(record)
    actions = env.apply(_cancel(record.invocation_id), _cancel(record.invocation_id, 2))
    assert outcomes(actions) == [act.Outcome.OK, act.Outcome.OK]
    [(note_type, index)] = forwarded(actions)
    assert decode(
        note_type, env.journal(record.invocation_id)[index].payload
    ) == pb.SignalNotificationMessage(idx=CANCEL_SIGNAL_IDX, void=pb.Void())


def test_cancel_of_an_inboxed_invocation_completes_it_and_leaves_the_queue(env: TestEnv) -> None:
    holder, queued, after = (invoke("Counter", "add", n=n, key="k") for n in (1, 2, 3))
    env.apply(holder, queued, after)
    actions = env.apply(_cancel(queued.invocation_id))
    assert completed(actions) == {queued.invocation_id: CANCELLED}
    assert env.status(queued.invocation_id) is None
    assert started(env.apply(end_with(holder.invocation_id, b""))) == [after.invocation_id]


def test_cancel_of_a_scheduled_invocation_removes_its_timer(env: TestEnv) -> None:
    record = invoke(execute_at=START + 60_000)
    env.apply(record)
    assert len(env.timers()) == 1
    assert completed(env.apply(_cancel(record.invocation_id))) == {record.invocation_id: CANCELLED}
    assert env.timers() == []


def test_cancel_of_a_paused_invocation_resumes_it_to_handle_the_signal(env: TestEnv) -> None:
    record = invoke()
    env.apply(record, rec.Pause(invocation_id=record.invocation_id))
    actions = env.apply(_cancel(record.invocation_id))
    assert started(actions) == [record.invocation_id]
    assert env.journal_types(record.invocation_id)[-1] == T.SIGNAL_NOTIFICATION


def test_kill_aborts_the_attempt_answers_the_caller_and_frees_the_key(env: TestEnv) -> None:
    caller = InvocationId.deterministic(3, "caller").to_bytes()
    holder = invoke("Counter", "add", n=1, key="k", response_to=(caller, 2))
    queued = invoke("Counter", "add", n=2, key="k")
    env.apply(holder, queued)
    actions = env.apply(_kill(holder.invocation_id))
    assert aborted(actions) == [holder.invocation_id]
    assert completed(actions) == {holder.invocation_id: KILLED}
    assert sent(actions) == [rec.InvocationResponse(invocation_id=caller, completion_id=2, result=KILLED)]
    assert started(actions) == [queued.invocation_id]
    assert outcomes(actions) == [act.Outcome.OK]


def test_kill_of_an_inboxed_invocation_never_starts_it(env: TestEnv) -> None:
    holder, queued = invoke("Counter", "add", n=1, key="k"), invoke("Counter", "add", n=2, key="k")
    env.apply(holder, queued)
    assert completed(env.apply(_kill(queued.invocation_id))) == {queued.invocation_id: KILLED}
    assert started(env.apply(end_with(holder.invocation_id, b""))) == []


def test_kill_cascades_to_the_calls_still_awaited(env: TestEnv) -> None:
    parent = invoke()
    env.apply(parent)
    awaited = call("Counter", "add", key="a", id_idx=1, cid=2)
    answered = call("Counter", "add", key="b", id_idx=3, cid=4)
    one_way = command(
        pb.OneWayCallCommandMessage(
            service_name="Counter", handler_name="add", key="c", invocation_id_notification_idx=5
        )
    )
    children = [
        r
        for r in sent(env.apply(effect(parent.invocation_id, awaited, answered, one_way)))
        if isinstance(r, rec.Invoke)
    ]
    env.apply(rec.InvocationResponse(invocation_id=parent.invocation_id, completion_id=4, result=value(b"")))

    actions = env.apply(_kill(parent.invocation_id))
    kills = [r for r in sent(actions) if isinstance(r, rec.Terminate)]
    assert [(k.invocation_id, k.mode) for k in kills] == [(children[0].invocation_id, "kill")]


def test_cancel_cascades_through_the_signal_the_sdk_forwards_to_its_child(env: TestEnv) -> None:
    holder = invoke("Counter", "add", n=1, key="k")
    parent = invoke(n=2)
    env.apply(holder, parent)
    [child] = sent(env.apply(effect(parent.invocation_id, call("Counter", "add", key="k"))))
    assert isinstance(child, rec.Invoke)
    env.apply(child)  # waits behind the holder
    forward = command(
        pb.SendSignalCommandMessage(
            target_invocation_id=str(InvocationId.from_bytes(child.invocation_id)),
            idx=CANCEL_SIGNAL_IDX,
            void=pb.Void(),
        )
    )
    [signal] = sent(env.apply(effect(parent.invocation_id, forward, first=2)))
    actions = env.apply(signal)
    assert completed(actions) == {child.invocation_id: CANCELLED}
    [response] = [r for r in sent(actions) if isinstance(r, rec.InvocationResponse)]
    assert (response.invocation_id, response.result) == (parent.invocation_id, CANCELLED)


def test_terminating_a_completed_or_unknown_invocation_says_so(env: TestEnv) -> None:
    done = invoke(completion_retention=1_000_000)
    env.apply(done)
    env.apply(end_with(done.invocation_id, b""))
    unknown = InvocationId.deterministic(1, "nobody").to_bytes()
    actions = env.apply(_kill(done.invocation_id, 1), _cancel(done.invocation_id, 2), _kill(unknown, 3))
    assert outcomes(actions) == [act.Outcome.COMPLETED, act.Outcome.COMPLETED, act.Outcome.NOT_FOUND]
    assert of_type(actions, act.AbortAttempt) == []
    assert env.must_status(done.invocation_id).status == Status.COMPLETED
