"""The partition processor's deterministic state machine.

`apply` takes one log record and the batch Context; it only reads and writes the transaction and
collects actions. Same log + same store = same result, which is what makes replay after a crash
safe. Each record kind is one small function here; commands are in `commands.py`, invocation
lifecycle steps in `lifecycle.py`.
"""

from __future__ import annotations

import logging

from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T, decode_suspension, is_command, is_custom
from restate_server.protocol.notifications import (
    CANCEL_SIGNAL_IDX,
    completion_notification,
    signal_notification,
)
from restate_server.storage import fsm, state, status, timers
from restate_server.storage.status import InvocationStatus
from restate_server.worker import actions as act
from restate_server.worker.state_machine import lifecycle
from restate_server.worker.state_machine.commands import HANDLERS
from restate_server.worker.state_machine.context import Context, ServiceLookup

__all__ = ["Context", "ServiceLookup", "apply"]

log = logging.getLogger(__name__)


def apply(ctx: Context, record: rec.Record) -> None:
    if record.dedup is not None and fsm.seen_duplicate(ctx.txn, ctx.partition, *record.dedup):
        return
    if record.epoch and record.epoch < fsm.get_int(ctx.txn, ctx.partition, fsm.LEADER_EPOCH):
        log.debug("dropping record from stale epoch %s", record.epoch)
        return
    match record:
        case rec.AnnounceLeader():
            fsm.set_int(ctx.txn, ctx.partition, fsm.LEADER_EPOCH, record.leader_epoch)
        case rec.Invoke():
            ctx.now = max(ctx.now, record.created_at)
            lifecycle.invoke(ctx, record)
        case rec.InvokerEffect():
            ctx.now = max(ctx.now, record.now)
            _invoker_effect(ctx, record)
        case rec.TimerFired():
            ctx.now = max(ctx.now, record.now)
            _timer_fired(ctx, record)
        case rec.InvocationResponse():
            _invocation_response(ctx, record)
        case rec.NotifySignal():
            _notify_signal(ctx, record)
        case rec.Terminate():
            ctx.now = max(ctx.now, record.now)
            _terminate(ctx, record)
        case rec.Purge():
            ctx.now = max(ctx.now, record.now)
            _purge(ctx, record)
        case rec.Resume():
            _resume(ctx, record)
        case rec.Pause():
            _pause(ctx, record)
        case rec.PatchState():
            _patch_state(ctx, record)


def _invoker_effect(ctx: Context, record: rec.InvokerEffect) -> None:
    inv = record.invocation_id
    st = ctx.status(inv)
    if st is None or st.status not in (status.INVOKED, status.SUSPENDED):
        return
    if record.pin is not None and st.deployment_id is None:
        st.deployment_id, st.protocol_version = record.pin
        st.running_at = ctx.now
    command_index = record.first_command_index
    for type_, flags, payload in record.entries:
        if is_command(type_) or is_custom(type_):
            if command_index == st.commands:
                index = ctx.append_entry(inv, st, type_, flags, payload)
                st.commands += 1
                handler = HANDLERS.get(type_)
                if handler is not None:
                    handler(ctx, inv, st, index, payload)
            command_index += 1
        elif type_ == T.PROPOSE_RUN_COMPLETION:
            _run_completion(ctx, inv, st, flags, payload)
    ctx.save(inv, st)
    if record.terminal is not None:
        _terminal(ctx, inv, st, record.terminal)


def _run_completion(ctx: Context, inv: bytes, st: InvocationStatus, flags: int, payload: bytes) -> None:
    msg = pb.ProposeRunCompletionMessage.FromString(payload)
    cid = msg.result_completion_id
    if msg.WhichOneof("result") == "failure":
        note = completion_notification(T.RUN_COMPLETION, cid, failure=msg.failure)
    else:
        note = completion_notification(T.RUN_COMPLETION, cid, value=msg.value)
    ctx.notify(inv, st, T.RUN_COMPLETION, note, completion_id=cid, ack=bool(flags & 0x8000))


def _terminal(ctx: Context, inv: bytes, st: InvocationStatus, terminal: list[object]) -> None:
    kind = terminal[0]
    if kind == "end":
        lifecycle.complete(ctx, inv, st, st.result or ["value", b""])
    elif kind == "suspend":
        st.waiting = [terminal[1], terminal[2], terminal[3]]
        if ctx.suspension_satisfied(st):
            ctx.resume(inv, st)
        else:
            st.status = status.SUSPENDED
            ctx.save(inv, st)
            log.debug("invocation %s suspended", inv.hex())
    elif kind == "kill":
        lifecycle.complete(ctx, inv, st, ["failure", terminal[1], terminal[2]])
    elif kind == "pause":
        st.status = status.PAUSED
        ctx.save(inv, st)


def decode_suspension_terminal(payload: bytes, version: int) -> list[object]:
    completions, signals, names, _future = decode_suspension(payload, version)
    return ["suspend", completions, signals, names]


def _timer_fired(ctx: Context, record: rec.TimerFired) -> None:
    if not timers.exists(ctx.txn, record.timer_key):
        return
    timers.delete(ctx.txn, ctx.partition, record.timer_key)
    _fire_at, kind, inv, completion_id = timers.parse(record.timer_key)
    st = ctx.status(inv)
    if st is None or st.status == status.COMPLETED:
        return
    if kind == timers.SLEEP:
        ctx.notify(
            inv,
            st,
            T.SLEEP_COMPLETION,
            completion_notification(T.SLEEP_COMPLETION, completion_id),
            completion_id=completion_id,
        )
    elif kind == timers.DELAYED_INVOKE and st.status == status.SCHEDULED:
        lifecycle.start_or_enqueue(ctx, inv, st)


def _note_for_result(type_: int, completion_id: int, result: list[object]) -> bytes:
    if result[0] == "value":
        return completion_notification(type_, completion_id, value=result[1])  # type: ignore[arg-type]
    if result[0] == "failure":
        return completion_notification(type_, completion_id, failure=(result[1], result[2]))  # type: ignore[arg-type]
    return completion_notification(type_, completion_id, void=True)


def _invocation_response(ctx: Context, record: rec.InvocationResponse) -> None:
    st = ctx.status(record.invocation_id)
    if st is None or st.status == status.COMPLETED:
        return
    note = _note_for_result(record.notification_type, record.completion_id, record.result)
    ctx.notify(record.invocation_id, st, record.notification_type, note, completion_id=record.completion_id)


def _notify_signal(ctx: Context, record: rec.NotifySignal) -> None:
    st = ctx.status(record.invocation_id)
    outcome = "not_found" if st is None else "completed" if st.status == status.COMPLETED else "ok"
    if st is not None and outcome == "ok":
        if record.signal_index == CANCEL_SIGNAL_IDX:
            lifecycle.cancel(ctx, record.invocation_id, st)
        else:
            signal: int | str = (
                record.signal_index if record.signal_index is not None else record.signal_name or ""
            )
            res = record.result
            if res[0] == "value":
                payload = signal_notification(signal, value=res[1])
            elif res[0] == "failure":
                payload = signal_notification(signal, failure=(res[1], res[2]))
            else:
                payload = signal_notification(signal, void=True)
            if (isinstance(signal, int) and signal in st.signal_ids) or signal in st.signal_names:
                outcome = "completed"
            else:
                ctx.notify(record.invocation_id, st, T.SIGNAL_NOTIFICATION, payload, signal=signal)
    if record.submit_request is not None:
        ctx.emit(act.SubmitOutcome(record.submit_request, outcome, record.invocation_id))


def _terminate(ctx: Context, record: rec.Terminate) -> None:
    st = ctx.status(record.invocation_id)
    if st is None:
        outcome = "not_found"
    else:
        done = (
            lifecycle.kill(ctx, record.invocation_id, st)
            if record.mode == "kill"
            else lifecycle.cancel(ctx, record.invocation_id, st)
        )
        outcome = "ok" if done else "completed"
    if record.submit_request is not None:
        ctx.emit(act.SubmitOutcome(record.submit_request, outcome, record.invocation_id))


def _purge(ctx: Context, record: rec.Purge) -> None:
    outcome = "not_found"
    for inv in record.invocation_ids:
        st = ctx.status(inv)
        if st is None:
            continue
        outcome = "ok" if lifecycle.purge(ctx, inv, st) else "not_completed"
    if record.submit_request is not None:
        ctx.emit(act.SubmitOutcome(record.submit_request, outcome, None))


def _resume(ctx: Context, record: rec.Resume) -> None:
    st = ctx.status(record.invocation_id)
    outcome = "not_found"
    if st is not None:
        if st.status in (status.PAUSED, status.SUSPENDED):
            ctx.resume(record.invocation_id, st)
            outcome = "ok"
        elif st.status == status.INVOKED:
            outcome = "ok"
        else:
            outcome = "completed" if st.status == status.COMPLETED else "not_completed"
    if record.submit_request is not None:
        ctx.emit(act.SubmitOutcome(record.submit_request, outcome, record.invocation_id))


def _pause(ctx: Context, record: rec.Pause) -> None:
    st = ctx.status(record.invocation_id)
    if st is None:
        outcome = "not_found"
    elif st.status == status.PAUSED:
        outcome = "already_paused"
    elif st.status in (status.INVOKED, status.SUSPENDED):
        st.status = status.PAUSED
        st.waiting = None
        ctx.save(record.invocation_id, st)
        ctx.emit(act.AbortAttempt(record.invocation_id))
        outcome = "ok"
    else:
        outcome = "not_running"
    if record.submit_request is not None:
        ctx.emit(act.SubmitOutcome(record.submit_request, outcome, record.invocation_id))


def _patch_state(ctx: Context, record: rec.PatchState) -> None:
    current = state.get_all(ctx.txn, ctx.partition, record.service, record.key)
    if record.expected_version is not None:
        from restate_server.storage.state_version import state_version

        if state_version(current) != record.expected_version:
            return
    state.clear_all(ctx.txn, ctx.partition, record.service, record.key)
    for name, value in record.new_state.items():
        state.put(ctx.txn, ctx.partition, record.service, record.key, name, value)
