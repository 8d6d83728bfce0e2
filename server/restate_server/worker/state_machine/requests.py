"""Admin requests that reach the state machine as records: terminate, purge, resume, pause, patch state.

Restart-as-new creates an invocation, and lives in its own module (`restart`).

Each answers the waiting request with a `SubmitOutcome`; whether a move is possible is read
from the transition table, so the answers and the lifecycle cannot disagree.
"""

from __future__ import annotations

from restate_server.log import records as rec
from restate_server.outcomes import JournalEvent
from restate_server.storage import inbox
from restate_server.storage.status import Status
from restate_server.worker import actions as act
from restate_server.worker.state_machine import lifecycle, state_patch, transitions
from restate_server.worker.state_machine.context import Context
from restate_server.worker.state_machine.transitions import Event

MANUAL_PAUSE = JournalEvent(ty="Paused", json='{"ty":"Paused"}')  # upstream: a pause without a failure


def _answer(ctx: Context, request_id: int | None, outcome: act.Outcome, inv: bytes | None) -> None:
    if request_id is not None:
        ctx.emit(act.SubmitOutcome(request_id=request_id, outcome=outcome, invocation_id=inv))


def terminate(ctx: Context, record: rec.Terminate) -> None:
    inv = record.invocation_id
    st = ctx.status(inv)
    if st is None:
        outcome = act.Outcome.NOT_FOUND
    else:
        done = lifecycle.kill(ctx, inv, st) if record.mode == "kill" else lifecycle.cancel(ctx, inv, st)
        outcome = act.Outcome.OK if done else act.Outcome.COMPLETED
    _answer(ctx, record.submit_request, outcome, inv)


def purge(ctx: Context, record: rec.Purge) -> None:
    outcome = act.Outcome.NOT_FOUND
    for inv in record.invocation_ids:
        st = ctx.status(inv)
        if st is None:
            continue
        outcome = act.Outcome.OK if lifecycle.purge(ctx, inv, st) else act.Outcome.NOT_COMPLETED
    _answer(ctx, record.submit_request, outcome, None)


def purge_journal(ctx: Context, record: rec.PurgeJournal) -> None:
    """Drop a completed invocation's journal; its status and result stay for their retention."""
    inv = record.invocation_id
    st = ctx.status(inv)
    if st is None:
        outcome = act.Outcome.NOT_FOUND
    elif st.status != Status.COMPLETED:
        outcome = act.Outcome.NOT_COMPLETED
    else:
        lifecycle.drop_journal(ctx, inv, st)
        st.commands = 0  # as upstream: the status no longer describes a journal
        ctx.save(inv, st)
        outcome = act.Outcome.OK
    _answer(ctx, record.submit_request, outcome, inv)


def resume(ctx: Context, record: rec.Resume) -> None:
    inv = record.invocation_id
    st = ctx.status(inv)
    if st is None:
        outcome = act.Outcome.NOT_FOUND
    elif transitions.allowed(st.status, Event.RESUME):
        ctx.resume(inv, st)
        outcome = act.Outcome.OK
    elif st.status == Status.INVOKED:
        outcome = act.Outcome.OK  # running already
    elif st.status == Status.COMPLETED:
        outcome = act.Outcome.COMPLETED
    else:
        outcome = act.Outcome.NOT_COMPLETED
    _answer(ctx, record.submit_request, outcome, inv)


def pause(ctx: Context, record: rec.Pause) -> None:
    inv = record.invocation_id
    st = ctx.status(inv)
    if st is None:
        outcome = act.Outcome.NOT_FOUND
    elif st.status == Status.PAUSED:
        outcome = act.Outcome.ALREADY_PAUSED
    elif transitions.allowed(st.status, Event.PAUSE):
        lifecycle.record_event(ctx, inv, st, MANUAL_PAUSE)
        lifecycle.pause(ctx, inv, st)
        outcome = act.Outcome.OK
    else:
        outcome = act.Outcome.NOT_RUNNING
    _answer(ctx, record.submit_request, outcome, inv)


def patch_state(ctx: Context, record: rec.PatchState) -> None:
    """Replace an object's state now, or after the invocations holding or waiting for its key (as upstream)."""
    state_patch.check(record)
    if inbox.lock_holder(ctx.txn, ctx.partition, record.service, record.key) is not None:
        inbox.enqueue_mutation(ctx.txn, ctx.partition, record.service, record.key, rec.encode(record))
    else:
        state_patch.apply(ctx, record)
