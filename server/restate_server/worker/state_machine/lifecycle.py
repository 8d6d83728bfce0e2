"""Invocation lifecycle: create, queue behind a key, run, suspend, pause, complete, cancel, kill, purge.

Upstream keeps the same split (`state_machine/lifecycle/*.rs`); here each step is one function over
the apply Context, and every status change goes through the transition table.
"""

from __future__ import annotations

from typing import Any

from restate_server.ids import InvocationId
from restate_server.log.records import Failure, InvocationResponse, Invoke, Result, Suspended, Terminate
from restate_server.outcomes import JournalEvent
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.protocol.notifications import CANCEL_SIGNAL_IDX, signal_notification
from restate_server.storage import inbox, journal, journal_events, keys, promises, timers
from restate_server.storage.status import InvocationStatus, Status
from restate_server.worker import actions as act
from restate_server.worker.state_machine import state_patch, transitions
from restate_server.worker.state_machine.context import Context
from restate_server.worker.state_machine.errors import ProtocolViolation
from restate_server.worker.state_machine.transitions import Event

CANCELLED = Failure(code=409, message="cancelled")
KILLED = Failure(code=409, message="killed")
WORKFLOW_ALREADY_INVOKED = Failure(code=409, message="the workflow method was already invoked")


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
        status=Status.FREE,
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
        transitions.move(st, Event.SCHEDULE)
        st.scheduled_at = now
        key = timers.add(ctx.txn, ctx.partition, record.execute_at, timers.DELAYED_INVOKE, timers.ident(inv))
        ctx.emit(act.RegisterTimer(partition=ctx.partition, key=key, fire_at=record.execute_at))
        ctx.save(inv, st)
    else:
        start_or_enqueue(ctx, inv, st)
    if record.submit_request is not None:
        ctx.emit(
            act.SubmitOutcome(
                request_id=record.submit_request,
                outcome=act.Outcome.ACCEPTED,
                invocation_id=inv,
                execute_at=record.execute_at,
            )
        )


def _on_duplicate(ctx: Context, record: Invoke, st: InvocationStatus) -> None:
    """Same deterministic id again: an idempotent retry, a workflow resubmission or a redelivery."""
    inv = record.invocation_id
    workflow_run = st.handler_ty == "Workflow"
    if record.response_to is not None:
        sink: list[Any] = [record.response_to[0], record.response_to[1]]
        if workflow_run and record.source.kind == "service":
            _respond(ctx, sink, WORKFLOW_ALREADY_INVOKED)
        elif st.status == Status.COMPLETED and st.result is not None:
            _respond(ctx, sink, st.result)
        else:
            st.response_sinks.append(sink)
            ctx.save(inv, st)
    if record.submit_request is None:
        return
    conflict = workflow_run and record.is_call
    ctx.emit(
        act.SubmitOutcome(
            request_id=record.submit_request,
            outcome=act.Outcome.CONFLICT if conflict else act.Outcome.PREVIOUSLY_ACCEPTED,
            invocation_id=inv,
            result=st.result if st.status == Status.COMPLETED else None,
            expires_at=st.expires_at,
        )
    )


def start_or_enqueue(ctx: Context, inv: bytes, st: InvocationStatus) -> None:
    """Run now, or wait in the key's inbox behind the invocation holding its lock."""
    if st.exclusive:
        assert st.key is not None
        holder = inbox.lock_holder(ctx.txn, ctx.partition, st.service, st.key)
        if holder is not None and holder != inv:
            transitions.move(st, Event.ENQUEUE)
            st.inboxed_at = ctx.now
            st.inbox_seq = inbox.enqueue(ctx.txn, ctx.partition, st.service, st.key, inv)
            ctx.save(inv, st)
            return
        inbox.lock(ctx.txn, ctx.partition, st.service, st.key, inv)
    transitions.move(st, Event.START)
    st.inbox_seq = None
    ctx.save(inv, st)
    ctx.emit(act.StartAttempt(partition=ctx.partition, invocation_id=inv))


def suspend(ctx: Context, inv: bytes, st: InvocationStatus, waiting: Suspended) -> None:
    """Park the invocation until one awaited notification arrives (at once if one already has)."""
    if not (waiting.completions or waiting.signals or waiting.names):
        raise ProtocolViolation("Protocol violation: the SuspensionMessage waits on nothing")
    transitions.move(st, Event.SUSPEND)
    st.waiting = waiting
    if ctx.suspension_satisfied(st):
        ctx.resume(inv, st)
    else:
        ctx.save(inv, st)


def pause(ctx: Context, inv: bytes, st: InvocationStatus) -> None:
    """Stop running until an admin resumes it; the attempt, if any, is aborted."""
    transitions.move(st, Event.PAUSE)
    st.waiting = None
    ctx.save(inv, st)
    ctx.emit(act.AbortAttempt(invocation_id=inv))


def _respond(ctx: Context, sink: list[Any], result: Result) -> None:
    """Send `result` to a caller waiting on it: `sink` is [caller id, completion id, (notification type)]."""
    caller = sink[0]
    notification_type = sink[2] if len(sink) > 2 else T.CALL_COMPLETION
    ctx.send(
        InvocationId.from_bytes(caller).partition_key,
        InvocationResponse(
            invocation_id=caller, completion_id=sink[1], result=result, notification_type=notification_type
        ),
    )


def complete(ctx: Context, inv: bytes, st: InvocationStatus, result: Result) -> None:
    """The invocation ended: answer callers and waiters, free the key, schedule the cleanup."""
    was_running = st.status in (Status.INVOKED, Status.SUSPENDED, Status.PAUSED)
    transitions.move(st, Event.COMPLETE)
    st.result = result
    st.completed_at = ctx.now
    st.waiting = None
    for sink in st.response_sinks:
        _respond(ctx, sink, result)
    st.response_sinks = []
    ctx.emit(
        act.InvocationCompleted(
            invocation_id=inv,
            result=result,
            expires_at=st.expires_at,
            idempotent=st.idempotency_key is not None,
        )
    )
    if was_running and st.exclusive:
        _release_key(ctx, inv, st)
    if st.journal_retention == 0:
        drop_journal(ctx, inv, st)
    if st.completion_retention == 0 and st.journal_retention == 0:
        ctx.forget(inv, st)
        if st.handler_ty == "Workflow" and st.key is not None:
            _clear_workflow(ctx, inv, st)
    else:
        ctx.save(inv, st)


def drop_journal(ctx: Context, inv: bytes, st: InvocationStatus) -> None:
    """Delete the journal (and its events) of an invocation that will not run again (its status may stay)."""
    journal.delete_all(ctx.txn, ctx.partition, inv, st.journal_length)
    journal_events.delete_all(ctx.txn, ctx.partition, inv)
    st.journal_length = 0


def record_event(ctx: Context, inv: bytes, st: InvocationStatus, event: JournalEvent) -> None:
    """Keep a journal event, ordered after the journal's current last entry (upstream's rule)."""
    journal_events.add(ctx.txn, ctx.partition, inv, max(st.journal_length - 1, 0), ctx.now, event)


def fail(ctx: Context, inv: bytes, st: InvocationStatus, failure: Failure) -> None:
    """End the invocation with `failure` now, whatever it was doing (a record it could not apply)."""
    if st.status in (Status.INBOXED, Status.SCHEDULED):
        _leave_queue(ctx, inv, st)
    else:
        ctx.emit(act.AbortAttempt(invocation_id=inv))
    complete(ctx, inv, st, failure)


def _release_key(ctx: Context, inv: bytes, st: InvocationStatus) -> None:
    assert st.key is not None
    if inbox.lock_holder(ctx.txn, ctx.partition, st.service, st.key) != inv:
        return
    inbox.unlock(ctx.txn, ctx.partition, st.service, st.key)
    while True:
        nxt = inbox.pop(ctx.txn, ctx.partition, st.service, st.key)
        if nxt is None:
            return
        if (patch := inbox.mutation(nxt)) is not None:
            state_patch.apply_queued(ctx, patch)
            continue
        nst = ctx.status(nxt)
        if nst is not None and nst.status == Status.INBOXED:
            start_or_enqueue(ctx, nxt, nst)
            return


def _clear_workflow(ctx: Context, inv: bytes, st: InvocationStatus) -> None:
    assert st.key is not None
    ctx.clear_all_state(st.service, st.key, (inv, "purge"))
    promises.clear_all(ctx.txn, ctx.partition, st.service, st.key)


def _leave_queue(ctx: Context, inv: bytes, st: InvocationStatus) -> None:
    """Take a not-yet-started invocation out of its key's inbox or off its delayed-start timer."""
    if st.status == Status.INBOXED and st.key is not None and st.inbox_seq is not None:
        inbox.remove(ctx.txn, ctx.partition, st.service, st.key, st.inbox_seq)
    elif st.status == Status.SCHEDULED and st.execute_at is not None:
        timer = keys.timer(ctx.partition, st.execute_at, timers.DELAYED_INVOKE, timers.ident(inv))
        timers.delete(ctx.txn, ctx.partition, timer)


def cancel(ctx: Context, inv: bytes, st: InvocationStatus) -> bool:
    """Graceful cancel; False if the invocation already completed."""
    if st.status == Status.COMPLETED:
        return False
    if st.status in (Status.INBOXED, Status.SCHEDULED):
        _leave_queue(ctx, inv, st)
        complete(ctx, inv, st, CANCELLED)
    elif CANCEL_SIGNAL_IDX not in st.signal_ids:
        ctx.notify(
            inv,
            st,
            T.SIGNAL_NOTIFICATION,
            signal_notification(CANCEL_SIGNAL_IDX, void=True),
            signal=CANCEL_SIGNAL_IDX,
        )
        if st.status == Status.PAUSED:
            ctx.resume(inv, st)
    return True


def kill(ctx: Context, inv: bytes, st: InvocationStatus) -> bool:
    """Immediate termination, with the calls it still awaits; False if it already completed."""
    if st.status == Status.COMPLETED:
        return False
    if st.status in (Status.INBOXED, Status.SCHEDULED):
        _leave_queue(ctx, inv, st)
    else:
        _kill_children(ctx, inv, st)
    ctx.emit(act.AbortAttempt(invocation_id=inv))
    complete(ctx, inv, st, KILLED)
    return True


def _kill_children(ctx: Context, inv: bytes, st: InvocationStatus) -> None:
    """Send a kill to every call whose result the invocation has not received (as upstream).

    One-way calls live on. The child ids come from the journaled CallInvocationId notifications,
    not from the schema, so a replay sends the same kills.
    """
    awaited: list[int] = []  # invocation-id notification index of each call still awaited
    children: dict[int, str] = {}  # that index -> child invocation id
    for entry in journal.read(ctx.txn, ctx.partition, inv):
        if entry.type == T.CALL_COMMAND:
            call = pb.CallCommandMessage.FromString(entry.payload)
            if call.result_completion_id not in st.completed_ids:
                awaited.append(call.invocation_id_notification_idx)
        elif entry.type == T.CALL_INVOCATION_ID_COMPLETION:
            note = pb.CallInvocationIdCompletionNotificationMessage.FromString(entry.payload)
            children[note.completion_id] = note.invocation_id
    for index in awaited:
        if index in children:
            child = InvocationId.parse(children[index])
            ctx.send(child.partition_key, Terminate(invocation_id=child.to_bytes(), mode="kill", now=ctx.now))


def purge(ctx: Context, inv: bytes, st: InvocationStatus) -> bool:
    """Forget a completed invocation (retention expired, or admin purge)."""
    if not transitions.allowed(st.status, Event.PURGE):
        return False
    drop_journal(ctx, inv, st)
    if st.handler_ty == "Workflow" and st.key is not None:
        _clear_workflow(ctx, inv, st)
    ctx.forget(inv, st)
    return True
