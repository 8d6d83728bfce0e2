"""Results arriving for an invocation from elsewhere: call responses, signals and fired timers.

Each becomes a notification in the target's journal (pushed to its attempt, or waking its
suspension). A result for an invocation that has completed meanwhile is dropped, as upstream does.
"""

from __future__ import annotations

import logging

from restate_server.ids import InvocationId
from restate_server.log import records as rec
from restate_server.protocol.messages import MessageType as T
from restate_server.protocol.notifications import CANCEL_SIGNAL_IDX, completion_notification
from restate_server.storage import timers
from restate_server.storage.status import Status
from restate_server.worker import actions as act
from restate_server.worker.state_machine import lifecycle
from restate_server.worker.state_machine.context import Context, completion_for, signal_for

log = logging.getLogger(__name__)


def invocation_response(ctx: Context, record: rec.InvocationResponse) -> None:
    st = ctx.status(record.invocation_id)
    if st is None or st.status == Status.COMPLETED:
        return
    note = completion_for(record.notification_type, record.completion_id, record.result)
    ctx.notify(record.invocation_id, st, record.notification_type, note, completion_id=record.completion_id)


def notify_signal(ctx: Context, record: rec.NotifySignal) -> None:
    inv = record.invocation_id
    st = ctx.status(inv)
    if st is None:
        outcome = act.Outcome.NOT_FOUND
    elif st.status == Status.COMPLETED:
        outcome = act.Outcome.COMPLETED
    elif record.signal_index == CANCEL_SIGNAL_IDX:
        lifecycle.cancel(ctx, inv, st)
        outcome = act.Outcome.OK
    else:
        signal = record.signal_index if record.signal_index is not None else record.signal_name or ""
        if signal in (st.signal_ids if isinstance(signal, int) else st.signal_names):
            outcome = act.Outcome.COMPLETED  # an awakeable completes once
        else:
            ctx.notify(inv, st, T.SIGNAL_NOTIFICATION, signal_for(signal, record.result), signal=signal)
            outcome = act.Outcome.OK
    if record.submit_request is not None:
        ctx.emit(act.SubmitOutcome(request_id=record.submit_request, outcome=outcome, invocation_id=inv))


def timer_fired(ctx: Context, record: rec.TimerFired) -> None:
    if not timers.exists(ctx.txn, record.timer_key):
        return  # cancelled, or fired already
    timers.delete(ctx.txn, ctx.partition, record.timer_key)
    _fire_at, kind, inv, completion_id = timers.parse(record.timer_key)
    st = ctx.status(inv)
    if st is None or st.status == Status.COMPLETED:
        return
    if kind == timers.SLEEP:
        note = completion_notification(T.SLEEP_COMPLETION, completion_id)
        ctx.notify(inv, st, T.SLEEP_COMPLETION, note, completion_id=completion_id)
    elif kind == timers.DELAYED_INVOKE and st.status == Status.SCHEDULED:
        lifecycle.start_or_enqueue(ctx, inv, st)
    else:
        log.debug(
            "timer kind %d for %s in status %s: nothing to do", kind, InvocationId.from_bytes(inv), st.status
        )
