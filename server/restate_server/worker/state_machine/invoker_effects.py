"""What an attempt produced (`InvokerEffect`): journal commands, run completions, and how it ended.

Commands are journaled at most once: an effect carries the index of its first command, so a
retried attempt that re-sends what an earlier one proposed is dropped here. An effect that starts
past the journal's end follows one that never landed, and is dropped whole. A payload that does
not decode is a protocol violation naming the command, raised before anything of the record is
kept (the apply boundary rolls the record back and fails the invocation).
"""

from __future__ import annotations

import logging
from typing import assert_never

from google.protobuf.message import DecodeError

from restate_server.ids import InvocationId
from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MESSAGE_CLASSES, MessageType as T, is_command, is_custom
from restate_server.protocol.notifications import completion_notification
from restate_server.storage.status import InvocationStatus, Status
from restate_server.worker.state_machine import lifecycle
from restate_server.worker.state_machine.commands import HANDLERS
from restate_server.worker.state_machine.context import Context
from restate_server.worker.state_machine.errors import ProtocolViolation

log = logging.getLogger(__name__)

_ACK_FLAG = 0x8000  # the SDK asks for a ProposeRunCompletionAck (V7)


def invoker_effect(ctx: Context, record: rec.InvokerEffect) -> None:
    inv = record.invocation_id
    st = ctx.status(inv)
    if st is None or st.status not in (Status.INVOKED, Status.SUSPENDED):
        log.debug("dropping an effect for %s: it is no longer running", InvocationId.from_bytes(inv))
        return
    if record.first_command_index > st.commands:
        # an earlier effect of the attempt never landed (its append failed): this one must not be
        # applied as if it had, least of all its terminal; the invoker retries from the journal
        log.warning(
            "dropping an effect for %s: it starts at command %d but the journal has %d",
            inv.hex(),
            record.first_command_index,
            st.commands,
        )
        return
    if record.pin is not None and st.deployment_id is None:
        st.deployment_id, st.protocol_version = record.pin
        st.running_at = ctx.now
    command_index = record.first_command_index
    for type_, flags, payload in record.entries:
        if is_command(type_) or is_custom(type_):
            if command_index == st.commands:
                _journal_command(ctx, inv, st, type_, flags, payload)
            command_index += 1
        elif type_ == T.PROPOSE_RUN_COMPLETION:
            _run_completion(ctx, inv, st, flags, payload)
    if record.event is not None:
        lifecycle.record_event(ctx, inv, st, record.event)
    ctx.save(inv, st)
    if record.terminal is not None:
        _terminal(ctx, inv, st, record.terminal)


def _journal_command(
    ctx: Context, inv: bytes, st: InvocationStatus, type_: int, flags: int, payload: bytes
) -> None:
    index = ctx.append_entry(inv, st, type_, flags, payload)
    st.commands += 1
    handler = HANDLERS.get(type_)
    if handler is None:
        return
    try:
        handler(ctx, inv, st, index, payload)
    except DecodeError:
        raise ProtocolViolation(_undecodable(type_, index)) from None


def _undecodable(type_: int, index: int) -> str:
    return (
        f"Protocol violation: the {MESSAGE_CLASSES[type_].__name__} at journal index {index} does not decode"
    )


def _run_completion(ctx: Context, inv: bytes, st: InvocationStatus, flags: int, payload: bytes) -> None:
    try:
        msg = pb.ProposeRunCompletionMessage.FromString(payload)
    except DecodeError:
        raise ProtocolViolation(_undecodable(T.PROPOSE_RUN_COMPLETION, st.journal_length)) from None
    cid = msg.result_completion_id
    if msg.WhichOneof("result") == "failure":
        note = completion_notification(T.RUN_COMPLETION, cid, failure=msg.failure)
    else:
        note = completion_notification(T.RUN_COMPLETION, cid, value=msg.value)
    ctx.notify(inv, st, T.RUN_COMPLETION, note, completion_id=cid, ack=bool(flags & _ACK_FLAG))


def _terminal(ctx: Context, inv: bytes, st: InvocationStatus, terminal: rec.Terminal) -> None:
    match terminal:
        case rec.Ended():
            lifecycle.complete(ctx, inv, st, st.result or rec.Value(content=b""))
        case rec.Suspended():
            lifecycle.suspend(ctx, inv, st, terminal)
        case rec.Killed():
            lifecycle.complete(ctx, inv, st, rec.Failure(code=terminal.code, message=terminal.message))
        case rec.Paused():
            lifecycle.pause(ctx, inv, st)
        case _:
            assert_never(terminal)
