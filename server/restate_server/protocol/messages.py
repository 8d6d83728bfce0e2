"""The service-protocol message registry: type codes, their classes, and the type families.

This is the one place that knows which u16 code goes with which protobuf class, so framing
(``codec``) and the invoker never hard-code numbers. Codes are those of protocol V5-V7; the
families follow the wire ranges: control ``0x0000-0x03FF``, commands ``0x0400-0x7FFF``,
notifications ``0x8000-0xFBFF``, custom entries otherwise (upstream treats any unknown code with
a bit of ``0xFC00`` set as custom and stores it opaquely).
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import IntEnum

from google.protobuf.message import DecodeError, Message

from restate_server.protocol import protocol_pb2 as pb

__all__ = [
    "CUSTOM_MESSAGE_MASK",
    "MESSAGE_CLASSES",
    "Message",
    "MessageType",
    "SuspensionDecodeError",
    "allows_ack",
    "decode_suspension",
    "flatten_future",
    "is_command",
    "is_control",
    "is_custom",
    "is_known",
    "is_notification",
]

CUSTOM_MESSAGE_MASK = 0xFC00
"""A code with any of these bits set and no known meaning is a custom entry."""


class MessageType(IntEnum):
    """Every message type code of protocol V5-V7 (``0x040F`` is unused upstream)."""

    START = 0x0000
    SUSPENSION = 0x0001
    ERROR = 0x0002
    END = 0x0003
    COMMAND_ACK = 0x0004
    PROPOSE_RUN_COMPLETION = 0x0005
    AWAITING_ON = 0x0006
    PROPOSE_RUN_COMPLETION_ACK = 0x0007

    INPUT_COMMAND = 0x0400
    OUTPUT_COMMAND = 0x0401
    GET_LAZY_STATE_COMMAND = 0x0402
    SET_STATE_COMMAND = 0x0403
    CLEAR_STATE_COMMAND = 0x0404
    CLEAR_ALL_STATE_COMMAND = 0x0405
    GET_LAZY_STATE_KEYS_COMMAND = 0x0406
    GET_EAGER_STATE_COMMAND = 0x0407
    GET_EAGER_STATE_KEYS_COMMAND = 0x0408
    GET_PROMISE_COMMAND = 0x0409
    PEEK_PROMISE_COMMAND = 0x040A
    COMPLETE_PROMISE_COMMAND = 0x040B
    SLEEP_COMMAND = 0x040C
    CALL_COMMAND = 0x040D
    ONE_WAY_CALL_COMMAND = 0x040E
    SEND_SIGNAL_COMMAND = 0x0410
    RUN_COMMAND = 0x0411
    ATTACH_INVOCATION_COMMAND = 0x0412
    GET_INVOCATION_OUTPUT_COMMAND = 0x0413
    COMPLETE_AWAKEABLE_COMMAND = 0x0414

    GET_LAZY_STATE_COMPLETION = 0x8002
    GET_LAZY_STATE_KEYS_COMPLETION = 0x8006
    GET_PROMISE_COMPLETION = 0x8009
    PEEK_PROMISE_COMPLETION = 0x800A
    COMPLETE_PROMISE_COMPLETION = 0x800B
    SLEEP_COMPLETION = 0x800C
    CALL_COMPLETION = 0x800D
    CALL_INVOCATION_ID_COMPLETION = 0x800E
    RUN_COMPLETION = 0x8011
    ATTACH_INVOCATION_COMPLETION = 0x8012
    GET_INVOCATION_OUTPUT_COMPLETION = 0x8013
    SIGNAL_NOTIFICATION = 0xFBFF


T = MessageType

MESSAGE_CLASSES: dict[int, type[Message]] = {
    T.START: pb.StartMessage,
    T.SUSPENSION: pb.SuspensionMessage,  # V7 layout; see decode_suspension for V5/V6
    T.ERROR: pb.ErrorMessage,
    T.END: pb.EndMessage,
    T.COMMAND_ACK: pb.CommandAckMessage,
    T.PROPOSE_RUN_COMPLETION: pb.ProposeRunCompletionMessage,
    T.AWAITING_ON: pb.AwaitingOnMessage,
    T.PROPOSE_RUN_COMPLETION_ACK: pb.ProposeRunCompletionAckMessage,
    T.INPUT_COMMAND: pb.InputCommandMessage,
    T.OUTPUT_COMMAND: pb.OutputCommandMessage,
    T.GET_LAZY_STATE_COMMAND: pb.GetLazyStateCommandMessage,
    T.SET_STATE_COMMAND: pb.SetStateCommandMessage,
    T.CLEAR_STATE_COMMAND: pb.ClearStateCommandMessage,
    T.CLEAR_ALL_STATE_COMMAND: pb.ClearAllStateCommandMessage,
    T.GET_LAZY_STATE_KEYS_COMMAND: pb.GetLazyStateKeysCommandMessage,
    T.GET_EAGER_STATE_COMMAND: pb.GetEagerStateCommandMessage,
    T.GET_EAGER_STATE_KEYS_COMMAND: pb.GetEagerStateKeysCommandMessage,
    T.GET_PROMISE_COMMAND: pb.GetPromiseCommandMessage,
    T.PEEK_PROMISE_COMMAND: pb.PeekPromiseCommandMessage,
    T.COMPLETE_PROMISE_COMMAND: pb.CompletePromiseCommandMessage,
    T.SLEEP_COMMAND: pb.SleepCommandMessage,
    T.CALL_COMMAND: pb.CallCommandMessage,
    T.ONE_WAY_CALL_COMMAND: pb.OneWayCallCommandMessage,
    T.SEND_SIGNAL_COMMAND: pb.SendSignalCommandMessage,
    T.RUN_COMMAND: pb.RunCommandMessage,
    T.ATTACH_INVOCATION_COMMAND: pb.AttachInvocationCommandMessage,
    T.GET_INVOCATION_OUTPUT_COMMAND: pb.GetInvocationOutputCommandMessage,
    T.COMPLETE_AWAKEABLE_COMMAND: pb.CompleteAwakeableCommandMessage,
    T.GET_LAZY_STATE_COMPLETION: pb.GetLazyStateCompletionNotificationMessage,
    T.GET_LAZY_STATE_KEYS_COMPLETION: pb.GetLazyStateKeysCompletionNotificationMessage,
    T.GET_PROMISE_COMPLETION: pb.GetPromiseCompletionNotificationMessage,
    T.PEEK_PROMISE_COMPLETION: pb.PeekPromiseCompletionNotificationMessage,
    T.COMPLETE_PROMISE_COMPLETION: pb.CompletePromiseCompletionNotificationMessage,
    T.SLEEP_COMPLETION: pb.SleepCompletionNotificationMessage,
    T.CALL_COMPLETION: pb.CallCompletionNotificationMessage,
    T.CALL_INVOCATION_ID_COMPLETION: pb.CallInvocationIdCompletionNotificationMessage,
    T.RUN_COMPLETION: pb.RunCompletionNotificationMessage,
    T.ATTACH_INVOCATION_COMPLETION: pb.AttachInvocationCompletionNotificationMessage,
    T.GET_INVOCATION_OUTPUT_COMPLETION: pb.GetInvocationOutputCompletionNotificationMessage,
    T.SIGNAL_NOTIFICATION: pb.SignalNotificationMessage,
}
"""Type code -> generated class. Keys are plain ints at lookup time (IntEnum hashes as int)."""

_CONTROL = frozenset(t for t in MessageType if t < 0x0400)
_COMMANDS = frozenset(t for t in MessageType if 0x0400 <= t < 0x8000)
_NOTIFICATIONS = frozenset(t for t in MessageType if t >= 0x8000)
_KNOWN = frozenset(MessageType)
# Upstream reads the REQUESTED_ACK flag only on these (commands and run proposals).
_ALLOWS_ACK = _COMMANDS | {T.PROPOSE_RUN_COMPLETION}


def is_known(t: int) -> bool:
    """True for a code this protocol defines."""
    return t in _KNOWN


def is_control(t: int) -> bool:
    """True for a known control message (Start, Suspension, Error, End, acks, ...)."""
    return t in _CONTROL


def is_command(t: int) -> bool:
    """True for a known command (a journal entry the SDK writes)."""
    return t in _COMMANDS


def is_notification(t: int) -> bool:
    """True for a known notification (completions and signals the server writes)."""
    return t in _NOTIFICATIONS


def is_custom(t: int) -> bool:
    """True for an unknown code that upstream accepts as an opaque custom entry."""
    return t not in _KNOWN and (t & CUSTOM_MESSAGE_MASK) != 0


def allows_ack(t: int) -> bool:
    """True where the REQUESTED_ACK flag has a meaning (commands, custom entries, run proposals)."""
    return t in _ALLOWS_ACK or is_custom(t)


class SuspensionDecodeError(ValueError):
    """The suspension payload is not valid protobuf for the negotiated layout."""


def flatten_future(future: pb.Future) -> tuple[list[int], list[int], list[str]]:
    """All completion ids, signal ids and signal names anywhere in a (nested) future."""
    completions: list[int] = []
    signals: list[int] = []
    names: list[str] = []
    for fut in _walk(future):
        completions.extend(fut.waiting_completions)
        signals.extend(fut.waiting_signals)
        names.extend(fut.waiting_named_signals)
    return completions, signals, names


def _walk(future: pb.Future) -> Iterator[pb.Future]:
    stack = [future]
    while stack:
        fut = stack.pop()
        yield fut
        stack.extend(reversed(fut.nested_futures))


def decode_suspension(
    payload: bytes, version: int
) -> tuple[list[int], list[int], list[str], pb.Future | None]:
    """Decode a Suspension payload by negotiated version: V5/V6 flat lists, V7 a future tree.

    Returns ``(completion_ids, signal_ids, named_signals, future)``; for V7 the lists are the
    flattened tree (as upstream does when it needs the V6 view) and ``future`` is the tree itself.
    """
    try:
        if version < 7:
            legacy = pb.SuspensionMessageV6.FromString(payload)
            return (
                list(legacy.waiting_completions),
                list(legacy.waiting_signals),
                list(legacy.waiting_named_signals),
                None,
            )
        msg = pb.SuspensionMessage.FromString(payload)
    except DecodeError as exc:
        raise SuspensionDecodeError(str(exc)) from exc
    future = msg.awaiting_on if msg.HasField("awaiting_on") else pb.Future()
    completions, signals, names = flatten_future(future)
    return completions, signals, names, future
