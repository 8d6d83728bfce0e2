"""Admin state patches (`POST /services/{svc}/state`) applied to an object's state.

A patch waits in the key's inbox while an invocation holds the key (`requests.patch_state`), and is
applied when the key is released (`lifecycle`), so it never changes the state under a running
exclusive handler; a stale `expected_version` drops it.
"""

from __future__ import annotations

import logging

from restate_server.log import records as rec
from restate_server.storage import state
from restate_server.storage.state_version import state_version
from restate_server.worker.state_machine.context import Context
from restate_server.worker.state_machine.errors import ApplyError

log = logging.getLogger(__name__)


def check(record: rec.PatchState) -> None:
    """Refuse a patch whose names or values are not bytes, before it is applied or queued."""
    if not all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in record.new_state.items()):
        raise ApplyError("internal error: a state patch with names or values that are not bytes")


def apply(ctx: Context, record: rec.PatchState) -> None:
    """Replace an object's whole state, unless `expected_version` no longer matches it.

    Its history event (`admin/<lsn>`, the LSN of the record applying it) clears the keys the new
    state drops and sets every key it has.
    """
    check(record)
    current = state.get_all(ctx.txn, ctx.partition, record.service, record.key)
    if record.expected_version is not None and state_version(current) != record.expected_version:
        return
    origin = (None, f"admin/{ctx.lsn}")
    for name, _ in current:
        if name not in record.new_state:
            ctx.clear_state(record.service, record.key, name, origin)
    for name, value in record.new_state.items():
        ctx.set_state(record.service, record.key, name, value, origin)


def apply_queued(ctx: Context, encoded: bytes) -> None:
    """Apply a patch that waited in the inbox (as its encoded record); one that does not decode is
    dropped, so it cannot fail the invocation whose end released the key."""
    try:
        record = rec.decode(encoded)
        if not isinstance(record, rec.PatchState):
            raise ApplyError(f"a queued state mutation is a {type(record).__name__}")
        check(record)
    except (rec.RecordDecodeError, ApplyError) as exc:
        log.error("dropped a queued state mutation: %s", exc)
        return
    apply(ctx, record)
