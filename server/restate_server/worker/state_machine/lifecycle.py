"""Invocation lifecycle: create, queue behind a key, run, complete, cancel, kill, purge.

Upstream keeps the same split (`state_machine/lifecycle/*.rs`); here each step is one function over
the apply Context. Results are stored as `["value", bytes]` or `["failure", code, message]`.
"""

from __future__ import annotations

from typing import Any

from restate_server.ids import InvocationId
from restate_server.log.records import InvocationResponse, Invoke
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.protocol.notifications import CANCEL_SIGNAL_IDX, signal_notification
from restate_server.storage import inbox, journal, promises, state, status, timers
from restate_server.storage.status import InvocationStatus
from restate_server.worker import actions as act
from restate_server.worker.state_machine.context import Context

CANCELLED = ["failure", 409, "cancelled"]
KILLED = ["failure", 409, "killed"]


def _input_entry(record: Invoke) -> bytes:
    msg = pb.InputCommandMessage(value=pb.Value(content=record.body))
    for name, value in record.headers:
        msg.headers.add(key=name, value=value)
    return msg.SerializeToString()


def invoke(ctx: Context, record: Invoke) -> None:
    inv = record.invocation_id
    existing = ctx.status(inv)
    if existing is not None:
        _on_duplicate(ctx, record, existing)
        return
    now = ctx.now
    st = InvocationStatus(
        status=status.INVOKED,
        service=record.service,
        handler=record.handler,
        key=record.key,
        service_ty=record.service_ty,
        handler_ty=record.handler_ty,
        created_at=record.created_at,
        modified_at=now,
        source=record.source.to_wire(),
        idempotency_key=record.idempotency_key,
        completion_retention=record.completion_retention,
        journal_retention=record.journal_retention,
        execute_at=record.execute_at,
    )
    if record.response_to is not None:
        st.response_sinks.append([record.response_to[0], record.response_to[1]])
    ctx.append_entry(inv, st, T.INPUT_COMMAND, 0, _input_entry(record))
    st.commands = 1
    if record.execute_at is not None and record.execute_at > now:
        st.status = status.SCHEDULED
        st.scheduled_at = now
        key = timers.add(ctx.txn, ctx.partition, record.execute_at, timers.DELAYED_INVOKE, timers.ident(inv))
        ctx.emit(act.RegisterTimer(ctx.partition, key, record.execute_at))
        ctx.save(inv, st)
    else:
        start_or_enqueue(ctx, inv, st)
    if record.submit_request is not None:
        ctx.emit(act.SubmitOutcome(record.submit_request, "accepted", inv, execute_at=record.execute_at))


def _on_duplicate(ctx: Context, record: Invoke, st: InvocationStatus) -> None:
    """Same deterministic id again: an idempotent retry, a workflow resubmission or a redelivery."""
    inv = record.invocation_id
    workflow_run = st.handler_ty == "Workflow"
    if record.response_to is not None:
        if workflow_run and record.source.kind == "service":
            _respond(
                ctx,
                [record.response_to[0], record.response_to[1]],
                ["failure", 409, "the workflow method was already invoked"],
            )
        elif st.status == status.COMPLETED and st.result is not None:
            _respond(ctx, [record.response_to[0], record.response_to[1]], st.result)
        else:
            st.response_sinks.append([record.response_to[0], record.response_to[1]])
            ctx.save(inv, st)
    if record.submit_request is None:
        return
    outcome = "conflict" if workflow_run and record.is_call else "previously_accepted"
    ctx.emit(
        act.SubmitOutcome(
            record.submit_request,
            outcome,
            inv,
            result=st.result if st.status == status.COMPLETED else None,
            expires_at=st.expires_at,
        )
    )


def start_or_enqueue(ctx: Context, inv: bytes, st: InvocationStatus) -> None:
    """Run now, or wait in the key's inbox behind the invocation holding its lock."""
    if st.exclusive:
        assert st.key is not None
        holder = inbox.lock_holder(ctx.txn, ctx.partition, st.service, st.key)
        if holder is not None and holder != inv:
            st.status = status.INBOXED
            st.inboxed_at = ctx.now
            st.inbox_seq = inbox.enqueue(ctx.txn, ctx.partition, st.service, st.key, inv)
            ctx.save(inv, st)
            return
        inbox.lock(ctx.txn, ctx.partition, st.service, st.key, inv)
    st.status = status.INVOKED
    st.inbox_seq = None
    ctx.save(inv, st)
    ctx.emit(act.StartAttempt(ctx.partition, inv))


def _respond(ctx: Context, sink: list[Any], result: list[Any]) -> None:
    caller = sink[0]
    notification_type = sink[2] if len(sink) > 2 else T.CALL_COMPLETION
    ctx.send(
        InvocationId.from_bytes(caller).partition_key,
        InvocationResponse(
            invocation_id=caller, completion_id=sink[1], result=result, notification_type=notification_type
        ),
    )


def complete(ctx: Context, inv: bytes, st: InvocationStatus, result: list[Any]) -> None:
    """The invocation ended: answer callers and waiters, free the key, schedule the cleanup."""
    was_running = st.status in (status.INVOKED, status.SUSPENDED, status.PAUSED)
    st.status = status.COMPLETED
    st.result = result
    st.completed_at = ctx.now
    st.waiting = None
    for sink in st.response_sinks:
        _respond(ctx, sink, result)
    st.response_sinks = []
    ctx.emit(act.InvocationCompleted(inv, result, st.expires_at, st.idempotency_key is not None))
    if was_running and st.exclusive:
        _release_key(ctx, inv, st)
    if st.journal_retention == 0:
        journal.delete_all(ctx.txn, ctx.partition, inv, st.journal_length)
        st.journal_length = 0
    if st.completion_retention == 0 and st.journal_retention == 0:
        ctx.forget(inv)
        if st.handler_ty == "Workflow" and st.key is not None:
            _clear_workflow(ctx, st)
    else:
        ctx.save(inv, st)


def _release_key(ctx: Context, inv: bytes, st: InvocationStatus) -> None:
    assert st.key is not None
    if inbox.lock_holder(ctx.txn, ctx.partition, st.service, st.key) != inv:
        return
    inbox.unlock(ctx.txn, ctx.partition, st.service, st.key)
    while True:
        nxt = inbox.pop(ctx.txn, ctx.partition, st.service, st.key)
        if nxt is None:
            return
        nst = ctx.status(nxt)
        if nst is not None and nst.status == status.INBOXED:
            start_or_enqueue(ctx, nxt, nst)
            return


def _clear_workflow(ctx: Context, st: InvocationStatus) -> None:
    assert st.key is not None
    state.clear_all(ctx.txn, ctx.partition, st.service, st.key)
    promises.clear_all(ctx.txn, ctx.partition, st.service, st.key)


def cancel(ctx: Context, inv: bytes, st: InvocationStatus) -> bool:
    """Graceful cancel; False if the invocation already completed."""
    if st.status == status.COMPLETED:
        return False
    if st.status == status.INBOXED:
        assert st.key is not None
        assert st.inbox_seq is not None
        inbox.remove(ctx.txn, ctx.partition, st.service, st.key, st.inbox_seq)
        complete(ctx, inv, st, CANCELLED)
    elif st.status == status.SCHEDULED:
        _drop_schedule_timer(ctx, inv, st)
        complete(ctx, inv, st, CANCELLED)
    elif CANCEL_SIGNAL_IDX not in st.signal_ids:
        ctx.notify(
            inv,
            st,
            T.SIGNAL_NOTIFICATION,
            signal_notification(CANCEL_SIGNAL_IDX, void=True),
            signal=CANCEL_SIGNAL_IDX,
        )
        if st.status == status.PAUSED:
            ctx.resume(inv, st)
    return True


def kill(ctx: Context, inv: bytes, st: InvocationStatus) -> bool:
    """Immediate termination; False if the invocation already completed."""
    if st.status == status.COMPLETED:
        return False
    if st.status == status.INBOXED:
        assert st.key is not None
        assert st.inbox_seq is not None
        inbox.remove(ctx.txn, ctx.partition, st.service, st.key, st.inbox_seq)
    elif st.status == status.SCHEDULED:
        _drop_schedule_timer(ctx, inv, st)
    ctx.emit(act.AbortAttempt(inv))
    complete(ctx, inv, st, KILLED)
    return True


def _drop_schedule_timer(ctx: Context, inv: bytes, st: InvocationStatus) -> None:
    if st.execute_at is not None:
        from restate_server.storage import keys

        timers.delete(
            ctx.txn,
            ctx.partition,
            keys.timer(ctx.partition, st.execute_at, timers.DELAYED_INVOKE, timers.ident(inv)),
        )


def purge(ctx: Context, inv: bytes, st: InvocationStatus) -> bool:
    """Forget a completed invocation (retention expired, or admin purge)."""
    if st.status != status.COMPLETED:
        return False
    journal.delete_all(ctx.txn, ctx.partition, inv, st.journal_length)
    if st.handler_ty == "Workflow" and st.key is not None:
        _clear_workflow(ctx, st)
    ctx.forget(inv)
    return True
