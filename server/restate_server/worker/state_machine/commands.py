"""What the partition processor does for each journaled command an SDK sent.

Most commands only need to be journaled. The ones below also touch state, timers, promises or
other invocations, and most answer with a notification carrying the command's completion id.
A payload that does not decode raises protobuf's `DecodeError`; the caller turns it into a
protocol violation naming the command.
"""

from __future__ import annotations

from collections.abc import Callable

from restate_server.ids import (
    IdError,
    InvocationId,
    decode_awakeable_id,
    partition_key_for,
)
from restate_server.log.records import Failure, Invoke, NotifySignal, Result, Source, Value, Void
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.protocol.notifications import completion_notification
from restate_server.storage import promises, state, timers
from restate_server.storage.status import InvocationStatus, Status
from restate_server.worker import actions as act
from restate_server.worker.state_machine.context import Context, completion_for
from restate_server.worker.state_machine.errors import ProtocolViolation

Handler = Callable[[Context, bytes, InvocationStatus, int, bytes], None]
_IDEMPOTENCY_RETENTION = 86_400_000  # ms; the schema's retention is not known to the state machine


def _object(st: InvocationStatus, index: int) -> tuple[str, str]:
    """(service, key) of the object or workflow whose state or promises the command uses."""
    if st.key is None or not st.keyed:
        raise ProtocolViolation(
            f"Protocol violation: the command at journal index {index} needs state, "
            f"but {st.service} is a service without state"
        )
    return st.service, st.key


def _output(ctx: Context, inv: bytes, st: InvocationStatus, index: int, payload: bytes) -> None:
    msg = pb.OutputCommandMessage.FromString(payload)
    if msg.HasField("failure"):
        st.result = Failure(code=msg.failure.code, message=msg.failure.message)
    else:
        st.result = Value(content=msg.value.content)


def _get_lazy_state(ctx: Context, inv: bytes, st: InvocationStatus, index: int, payload: bytes) -> None:
    msg = pb.GetLazyStateCommandMessage.FromString(payload)
    value = state.get(ctx.txn, ctx.partition, *_object(st, index), msg.key)
    note = completion_notification(
        T.GET_LAZY_STATE_COMPLETION, msg.result_completion_id, value=value, void=value is None
    )
    ctx.notify(inv, st, T.GET_LAZY_STATE_COMPLETION, note, completion_id=msg.result_completion_id)


def _get_lazy_state_keys(ctx: Context, inv: bytes, st: InvocationStatus, index: int, payload: bytes) -> None:
    msg = pb.GetLazyStateKeysCommandMessage.FromString(payload)
    names = [k for k, _ in state.get_all(ctx.txn, ctx.partition, *_object(st, index))]
    note = completion_notification(
        T.GET_LAZY_STATE_KEYS_COMPLETION, msg.result_completion_id, state_keys=names
    )
    ctx.notify(inv, st, T.GET_LAZY_STATE_KEYS_COMPLETION, note, completion_id=msg.result_completion_id)


def _set_state(ctx: Context, inv: bytes, st: InvocationStatus, index: int, payload: bytes) -> None:
    msg = pb.SetStateCommandMessage.FromString(payload)
    ctx.set_state(*_object(st, index), msg.key, msg.value.content, (inv, str(index)))


def _clear_state(ctx: Context, inv: bytes, st: InvocationStatus, index: int, payload: bytes) -> None:
    msg = pb.ClearStateCommandMessage.FromString(payload)
    ctx.clear_state(*_object(st, index), msg.key, (inv, str(index)))


def _clear_all_state(ctx: Context, inv: bytes, st: InvocationStatus, index: int, payload: bytes) -> None:
    ctx.clear_all_state(*_object(st, index), (inv, str(index)))


def _sleep(ctx: Context, inv: bytes, st: InvocationStatus, index: int, payload: bytes) -> None:
    msg = pb.SleepCommandMessage.FromString(payload)
    key = timers.add(
        ctx.txn, ctx.partition, msg.wake_up_time, timers.SLEEP, timers.ident(inv, msg.result_completion_id)
    )
    ctx.emit(act.RegisterTimer(partition=ctx.partition, key=key, fire_at=msg.wake_up_time))


def _child_id(
    inv: bytes,
    service: str,
    handler: str,
    key: str,
    idempotency_key: str | None,
    handler_ty: str | None,
    index: int,
) -> InvocationId:
    """Deterministic child id: a replayed or redelivered call maps to the same invocation."""
    if handler_ty == "Workflow":
        return InvocationId.for_workflow(service, key)
    if idempotency_key:
        return InvocationId.for_idempotent_request(service, handler, idempotency_key, key or None)
    pk = partition_key_for(key) if key else InvocationId.from_bytes(inv).partition_key
    return InvocationId.deterministic(pk, "call", inv, str(index))


def _invoke_child(
    ctx: Context,
    inv: bytes,
    st: InvocationStatus,
    index: int,
    msg: pb.CallCommandMessage | pb.OneWayCallCommandMessage,
    *,
    response_completion: int | None,
    execute_at: int | None,
) -> None:
    """Call and one-way call alike: create the child invocation and tell the caller its id."""
    service, handler, key, parameter = msg.service_name, msg.handler_name, msg.key, msg.parameter
    headers = [(h.key, h.value) for h in msg.headers]
    idempotency_key = msg.idempotency_key if msg.HasField("idempotency_key") else None
    notification_idx = msg.invocation_id_notification_idx
    looked_up = ctx.lookup_service(service)
    service_ty, handlers = looked_up if looked_up is not None else ("Service", {})
    handler_ty = handlers.get(handler)
    child = _child_id(inv, service, handler, key, idempotency_key, handler_ty, index)
    child_bytes = child.to_bytes()
    completion_retention = _IDEMPOTENCY_RETENTION if (idempotency_key or handler_ty == "Workflow") else 0
    # the status must outlive the journal (upstream caps the journal retention by the completion's)
    journal_retention = min(st.journal_retention, completion_retention or st.journal_retention)
    note = completion_notification(
        T.CALL_INVOCATION_ID_COMPLETION, notification_idx, invocation_id=str(child)
    )
    ctx.notify(inv, st, T.CALL_INVOCATION_ID_COMPLETION, note, completion_id=notification_idx)
    ctx.send(
        child.partition_key,
        Invoke(
            invocation_id=child_bytes,
            service=service,
            handler=handler,
            key=key if service_ty != "Service" else None,
            service_ty=service_ty,
            handler_ty=handler_ty,
            headers=headers,
            body=parameter,
            created_at=ctx.now,
            source=Source(kind="service", caller_id=inv, caller_target=st.target),
            response_to=(inv, response_completion) if response_completion is not None else None,
            idempotency_key=idempotency_key,
            execute_at=execute_at or None,
            completion_retention=completion_retention,
            journal_retention=journal_retention,
            is_call=response_completion is not None,
        ),
    )


def _call(ctx: Context, inv: bytes, st: InvocationStatus, index: int, payload: bytes) -> None:
    msg = pb.CallCommandMessage.FromString(payload)
    _invoke_child(ctx, inv, st, index, msg, response_completion=msg.result_completion_id, execute_at=None)


def _one_way_call(ctx: Context, inv: bytes, st: InvocationStatus, index: int, payload: bytes) -> None:
    msg = pb.OneWayCallCommandMessage.FromString(payload)
    _invoke_child(ctx, inv, st, index, msg, response_completion=None, execute_at=msg.invoke_time)


def _result_of(msg: pb.SendSignalCommandMessage | pb.CompleteAwakeableCommandMessage) -> Result:
    which = msg.WhichOneof("result")
    if which == "value":
        return Value(content=msg.value.content)
    if which == "failure":
        return Failure(code=msg.failure.code, message=msg.failure.message)
    return Void()


def _send_signal(ctx: Context, inv: bytes, st: InvocationStatus, index: int, payload: bytes) -> None:
    msg = pb.SendSignalCommandMessage.FromString(payload)
    try:
        target = InvocationId.parse(msg.target_invocation_id)
    except IdError:
        return
    which = msg.WhichOneof("signal_id")
    ctx.send(
        target.partition_key,
        NotifySignal(
            invocation_id=target.to_bytes(),
            signal_index=msg.idx if which == "idx" else None,
            signal_name=msg.name if which == "name" else None,
            result=_result_of(msg),
        ),
    )


def _complete_awakeable(ctx: Context, inv: bytes, st: InvocationStatus, index: int, payload: bytes) -> None:
    msg = pb.CompleteAwakeableCommandMessage.FromString(payload)
    try:
        ref = decode_awakeable_id(msg.awakeable_id)
    except IdError:
        return
    result = _result_of(msg)
    target = ref.invocation_id
    ctx.send(
        target.partition_key,
        NotifySignal(invocation_id=target.to_bytes(), signal_index=ref.idx, signal_name=None, result=result),
    )


def _get_promise(ctx: Context, inv: bytes, st: InvocationStatus, index: int, payload: bytes) -> None:
    msg = pb.GetPromiseCommandMessage.FromString(payload)
    service, key = _object(st, index)
    promise = promises.get(ctx.txn, ctx.partition, service, key, msg.key) or promises.Promise()
    if promise.result is not None:
        note = completion_for(T.GET_PROMISE_COMPLETION, msg.result_completion_id, promise.result)
        ctx.notify(inv, st, T.GET_PROMISE_COMPLETION, note, completion_id=msg.result_completion_id)
        return
    promise.waiters.append((inv, msg.result_completion_id))
    promises.put(ctx.txn, ctx.partition, service, key, msg.key, promise)


def _peek_promise(ctx: Context, inv: bytes, st: InvocationStatus, index: int, payload: bytes) -> None:
    msg = pb.PeekPromiseCommandMessage.FromString(payload)
    promise = promises.get(ctx.txn, ctx.partition, *_object(st, index), msg.key)
    note = completion_for(
        T.PEEK_PROMISE_COMPLETION, msg.result_completion_id, promise.result if promise else None
    )
    ctx.notify(inv, st, T.PEEK_PROMISE_COMPLETION, note, completion_id=msg.result_completion_id)


def _complete_promise(ctx: Context, inv: bytes, st: InvocationStatus, index: int, payload: bytes) -> None:
    msg = pb.CompletePromiseCommandMessage.FromString(payload)
    service, key = _object(st, index)
    promise = promises.get(ctx.txn, ctx.partition, service, key, msg.key) or promises.Promise()
    cid = msg.result_completion_id
    if promise.result is not None:
        note = completion_notification(
            T.COMPLETE_PROMISE_COMPLETION, cid, failure=(409, "promise was already completed")
        )
        ctx.notify(inv, st, T.COMPLETE_PROMISE_COMPLETION, note, completion_id=cid)
        return
    result: Result
    if msg.WhichOneof("completion") == "completion_failure":
        result = Failure(code=msg.completion_failure.code, message=msg.completion_failure.message)
    else:
        result = Value(content=msg.completion_value.content)
    waiters = promise.waiters
    promises.put(ctx.txn, ctx.partition, service, key, msg.key, promises.Promise(result=result))
    note = completion_notification(T.COMPLETE_PROMISE_COMPLETION, cid, void=True)
    ctx.notify(inv, st, T.COMPLETE_PROMISE_COMPLETION, note, completion_id=cid)
    for waiter_id, waiter_cid in waiters:
        wst = ctx.status(waiter_id)
        if wst is None or wst.status == Status.COMPLETED:
            continue
        ctx.notify(
            waiter_id,
            wst,
            T.GET_PROMISE_COMPLETION,
            completion_for(T.GET_PROMISE_COMPLETION, waiter_cid, result),
            completion_id=waiter_cid,
        )


HANDLERS: dict[int, Handler] = {
    T.OUTPUT_COMMAND: _output,
    T.GET_LAZY_STATE_COMMAND: _get_lazy_state,
    T.GET_LAZY_STATE_KEYS_COMMAND: _get_lazy_state_keys,
    T.SET_STATE_COMMAND: _set_state,
    T.CLEAR_STATE_COMMAND: _clear_state,
    T.CLEAR_ALL_STATE_COMMAND: _clear_all_state,
    T.SLEEP_COMMAND: _sleep,
    T.CALL_COMMAND: _call,
    T.ONE_WAY_CALL_COMMAND: _one_way_call,
    T.SEND_SIGNAL_COMMAND: _send_signal,
    T.COMPLETE_AWAKEABLE_COMMAND: _complete_awakeable,
    T.GET_PROMISE_COMMAND: _get_promise,
    T.PEEK_PROMISE_COMMAND: _peek_promise,
    T.COMPLETE_PROMISE_COMMAND: _complete_promise,
}
