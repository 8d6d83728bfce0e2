"""The entry point of the state machine: one record in, its writes and actions collected.

`apply` is the isolation boundary. A record runs inside a savepoint of the batch transaction; if
it cannot be applied (a payload that does not decode, a move the transition table does not have,
or a bug), its writes and actions are dropped and the invocation it concerns fails with code 571
instead, the same way on every replica and every replay. A record that cannot even do that is
logged and skipped. Nothing raises out of `apply`: a raise would stop the partition for good,
since every restart would replay the same record.
"""

from __future__ import annotations

import logging
from typing import assert_never

from restate_server.ids import InvocationId
from restate_server.log import records as rec
from restate_server.storage import fsm, outbox, timers
from restate_server.storage.status import Status
from restate_server.worker import actions as act
from restate_server.worker.state_machine import completions, lifecycle, requests, restart
from restate_server.worker.state_machine.context import Context
from restate_server.worker.state_machine.errors import PROTOCOL_VIOLATION, ApplyError
from restate_server.worker.state_machine.invoker_effects import invoker_effect

log = logging.getLogger(__name__)


def apply(ctx: Context, record: rec.Record) -> None:
    """Apply one record to `ctx.txn`, appending what the leader must do to `ctx.actions`."""
    try:
        if _duplicate_or_fenced(ctx, record):
            return
    except Exception:  # a malformed envelope: nothing of the record was applied
        log.exception("skipped a %s record: malformed envelope", type(record).__name__)
        return
    ctx.begin_record()
    try:
        if not isinstance(record, rec.AnyRecord):
            raise ApplyError(f"unknown record type {type(record).__name__}")
        _dispatch(ctx, record)
    except Exception as error:  # the isolation boundary: see the module docstring
        ctx.abandon_record()
        _fail_record(ctx, record, error)
    else:
        ctx.end_record()


def _duplicate_or_fenced(ctx: Context, record: rec.Record) -> bool:
    """An outbox redelivery seen before (its position is recorded if not), or a deposed leader's."""
    if record.dedup is not None and fsm.seen_duplicate(ctx.txn, ctx.partition, *record.dedup):
        return True
    if record.epoch and record.epoch < fsm.get_int(ctx.txn, ctx.partition, fsm.LEADER_EPOCH):
        log.debug("dropped a %s record from stale epoch %s", type(record).__name__, record.epoch)
        return True
    return False


def _dispatch(ctx: Context, record: rec.AnyRecord) -> None:
    match record:
        case rec.AnnounceLeader():
            fsm.set_int(ctx.txn, ctx.partition, fsm.LEADER_EPOCH, record.leader_epoch)
        case rec.Invoke():
            ctx.now = max(ctx.now, record.created_at)
            lifecycle.invoke(ctx, record)
        case rec.InvokerEffect():
            ctx.now = max(ctx.now, record.now)
            invoker_effect(ctx, record)
        case rec.TimerFired():
            ctx.now = max(ctx.now, record.now)
            completions.timer_fired(ctx, record)
        case rec.InvocationResponse():
            completions.invocation_response(ctx, record)
        case rec.NotifySignal():
            completions.notify_signal(ctx, record)
        case rec.Terminate():
            ctx.now = max(ctx.now, record.now)
            requests.terminate(ctx, record)
        case rec.Purge():
            ctx.now = max(ctx.now, record.now)
            requests.purge(ctx, record)
        case rec.Resume():
            requests.resume(ctx, record)
        case rec.Pause():
            requests.pause(ctx, record)
        case rec.PatchState():
            ctx.now = max(ctx.now, record.now)
            requests.patch_state(ctx, record)
        case rec.TruncateOutbox():
            outbox.truncate(ctx.txn, ctx.partition, record.up_to_seq)
        case rec.PurgeJournal():
            ctx.now = max(ctx.now, record.now)
            requests.purge_journal(ctx, record)
        case rec.RestartAsNew():
            ctx.now = max(ctx.now, record.now)
            restart.restart_as_new(ctx, record)
        case rec.TrimStateHistory():
            ctx.now = max(ctx.now, record.now)
            ctx.history.trim(ctx.txn, ctx.partition, now=ctx.now, retention=record.retention)
        case _:
            assert_never(record)


def _concerned_invocation(record: rec.Record) -> bytes | None:
    """The running invocation a record is about, which fails in its place; None if there is none.

    An Invoke is not listed: if creating an invocation fails there is nothing to fail, and an
    existing one with the same id must not pay for a bad duplicate.
    """
    match record:
        case (
            rec.InvokerEffect()
            | rec.InvocationResponse()
            | rec.NotifySignal()
            | rec.Terminate()
            | rec.Resume()
            | rec.Pause()
        ):
            return record.invocation_id
        case rec.TimerFired():
            return timers.parse(record.timer_key)[2]
    return None


def _fail_record(ctx: Context, record: rec.Record, error: Exception) -> None:
    name = type(record).__name__
    if isinstance(error, ApplyError):
        failure = rec.Failure(code=error.code, message=str(error))
        log.warning("cannot apply a %s record: %s", name, error)
    else:
        failure = rec.Failure(code=PROTOCOL_VIOLATION, message=f"internal error applying a {name} record")
        log.error("cannot apply a %s record", name, exc_info=error)
    ctx.begin_record()
    try:
        failed = _fail_in_place(ctx, record, failure)
    except Exception:
        log.exception("cannot fail the invocation of a %s record either", name)
        failed = None
    if failed is None:
        ctx.abandon_record()
        log.error("skipped a %s record that could not be applied: %s", name, failure.message)
    else:
        ctx.end_record()
        log.warning("invocation %s failed: %s", InvocationId.from_bytes(failed), failure.message)


def _fail_in_place(ctx: Context, record: rec.Record, failure: rec.Failure) -> bytes | None:
    """Complete the record's invocation with `failure`; its id, or None if there is none to fail."""
    inv = _concerned_invocation(record)
    st = None if inv is None else ctx.status(inv)
    if inv is None or st is None or st.status == Status.COMPLETED:
        return None
    lifecycle.fail(ctx, inv, st, failure)
    request = getattr(record, "submit_request", None)
    if request is not None:
        outcome = act.SubmitOutcome(
            request_id=request, outcome=act.Outcome.COMPLETED, invocation_id=inv, result=failure
        )
        ctx.emit(outcome)
    return inv
