"""Admin requests that reach the state machine as records: terminate, purge, resume, pause, patch state.

Each answers the waiting request with a `SubmitOutcome`; whether a move is possible is read
from the transition table, so the answers and the lifecycle cannot disagree.
"""

from __future__ import annotations

from restate_server.log import records as rec
from restate_server.storage import state
from restate_server.storage.state_version import state_version
from restate_server.storage.status import Status
from restate_server.worker import actions as act
from restate_server.worker.state_machine import lifecycle, transitions
from restate_server.worker.state_machine.context import Context
from restate_server.worker.state_machine.transitions import Event


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
        lifecycle.pause(ctx, inv, st)
        outcome = act.Outcome.OK
    else:
        outcome = act.Outcome.NOT_RUNNING
    _answer(ctx, record.submit_request, outcome, inv)


def patch_state(ctx: Context, record: rec.PatchState) -> None:
    """Replace an object's whole state, unless `expected_version` no longer matches it.

    Its history event (`admin/<lsn>`) clears the keys the new state drops and sets every key it has.
    """
    current = state.get_all(ctx.txn, ctx.partition, record.service, record.key)
    if record.expected_version is not None and state_version(current) != record.expected_version:
        return
    origin = (None, f"admin/{ctx.lsn}")
    for name, _ in current:
        if name not in record.new_state:
            ctx.clear_state(record.service, record.key, name, origin)
    for name, value in record.new_state.items():
        ctx.set_state(record.service, record.key, name, value, origin)
