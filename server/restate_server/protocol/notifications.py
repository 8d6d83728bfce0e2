"""Builders for the notifications the server writes, and reads of the ids inside commands.

The server appends notifications to journals and pushes them to SDKs as raw payload bytes, so
these helpers return ``bytes`` (frame them with ``codec.encode_frame``). Reading a command's
completion ids parses the message: the upb-backed parser (~0.6 us for a Call) beat a
pure-Python varint scan (~1.7 us) when measured.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.message import DecodeError, Message

from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.codec import Frame, ProtocolError
from restate_server.protocol.messages import MESSAGE_CLASSES, MessageType, is_notification

__all__ = [
    "CANCEL_SIGNAL_IDX",
    "COMMANDS_WITH_RESULT",
    "FailureLike",
    "command_completion_id",
    "completion_notification",
    "invocation_id_notification_idx",
    "make_failure",
    "signal_notification",
]

CANCEL_SIGNAL_IDX = 1
"""Built-in signal index of cancellation; user awakeables start at 17."""

FailureLike = pb.Failure | tuple[int, str]

T = MessageType

COMMANDS_WITH_RESULT = frozenset(
    {
        T.GET_LAZY_STATE_COMMAND,
        T.GET_LAZY_STATE_KEYS_COMMAND,
        T.GET_PROMISE_COMMAND,
        T.PEEK_PROMISE_COMMAND,
        T.COMPLETE_PROMISE_COMMAND,
        T.SLEEP_COMMAND,
        T.CALL_COMMAND,
        T.RUN_COMMAND,
        T.ATTACH_INVOCATION_COMMAND,
        T.GET_INVOCATION_OUTPUT_COMMAND,
    }
)
"""Commands carrying ``result_completion_id`` (field 11)."""

_CALLS = frozenset({T.CALL_COMMAND, T.ONE_WAY_CALL_COMMAND})
_EMPTY_VOID = pb.Void()
_RESULT_FIELDS = ("void", "value", "failure", "invocation_id", "state_keys")


def make_failure(failure: FailureLike) -> pb.Failure:
    """Accept a ``Failure`` or a ``(code, message)`` pair."""
    if isinstance(failure, pb.Failure):
        return failure
    code, message = failure
    return pb.Failure(code=code, message=message)


def completion_notification(
    type_code: int,
    completion_id: int,
    *,
    void: bool = False,
    value: bytes | None = None,
    failure: FailureLike | None = None,
    invocation_id: str | None = None,
    state_keys: Iterable[bytes] | None = None,
) -> bytes:
    """Payload of a completion notification (0x8002-0x8013) for ``completion_id``.

    Exactly one result may be given (none at all is allowed: e.g. a lazy-state miss is sent as
    ``void=True`` by convention, and upstream also accepts an absent result). A result the
    notification type does not have raises ``ValueError``.
    """
    if type_code == T.SIGNAL_NOTIFICATION or not is_notification(type_code):
        raise ValueError(f"{type_code:#06x} is not a completion notification type")
    given = (void, value is not None, failure is not None, invocation_id is not None, state_keys is not None)
    if sum(given) > 1:
        raise ValueError("a notification carries at most one result")
    cls = MESSAGE_CLASSES[type_code]
    if type_code == T.SLEEP_COMPLETION and not any(given):
        void = True  # a sleep completion is always void; SDKs expect the field present
    fields = cls.DESCRIPTOR.fields_by_name
    for name, present in zip(_RESULT_FIELDS, given, strict=True):
        if present and name not in fields:
            raise ValueError(f"{cls.__name__} has no {name!r} result")
    msg = cls()
    msg.completion_id = completion_id  # type: ignore[attr-defined]
    if void:
        msg.void.CopyFrom(_EMPTY_VOID)  # type: ignore[attr-defined]
    elif value is not None:
        msg.value.content = value  # type: ignore[attr-defined]
    elif failure is not None:
        msg.failure.CopyFrom(make_failure(failure))  # type: ignore[attr-defined]
    elif invocation_id is not None:
        msg.invocation_id = invocation_id  # type: ignore[attr-defined]
    elif state_keys is not None:
        msg.state_keys.keys.extend(state_keys)  # type: ignore[attr-defined]
    return msg.SerializeToString()


def signal_notification(
    signal: int | str,
    *,
    void: bool = False,
    value: bytes | None = None,
    failure: FailureLike | None = None,
) -> bytes:
    """Payload of a ``SignalNotificationMessage`` (0xFBFF) for a signal index or a signal name."""
    if sum((void, value is not None, failure is not None)) > 1:
        raise ValueError("a signal carries at most one result")
    msg = (
        pb.SignalNotificationMessage(idx=signal)
        if isinstance(signal, int)
        else pb.SignalNotificationMessage(name=signal)
    )
    if void:
        msg.void.CopyFrom(_EMPTY_VOID)
    elif value is not None:
        msg.value.content = value
    elif failure is not None:
        msg.failure.CopyFrom(make_failure(failure))
    return msg.SerializeToString()


def command_completion_id(frame: Frame) -> int | None:
    """``result_completion_id`` of a completable command, else None (also for OneWayCall)."""
    if frame.type not in COMMANDS_WITH_RESULT:
        return None
    return int(_parse(frame).result_completion_id)  # type: ignore[attr-defined]


def invocation_id_notification_idx(frame: Frame) -> int | None:
    """``invocation_id_notification_idx`` of a Call or OneWayCall, else None."""
    if frame.type not in _CALLS:
        return None
    return int(_parse(frame).invocation_id_notification_idx)  # type: ignore[attr-defined]


def _parse(frame: Frame) -> Message:
    try:
        return MESSAGE_CLASSES[frame.type].FromString(frame.payload)
    except DecodeError as exc:
        raise ProtocolError(f"cannot decode message type {frame.type:#06x}: {exc}") from exc
