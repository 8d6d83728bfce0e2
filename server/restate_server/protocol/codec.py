"""Service-protocol framing: bytes in, frames out, and frames back to bytes.

Sans-IO, like h2's frame buffer: the caller owns the socket and feeds whatever chunks arrive;
the decoder keeps partial frames. This is the invoker's hot path, so decoding works on one
``bytearray`` with a read offset (no re-copying of buffered bytes per chunk) and encoding is one
``struct.pack`` plus a concatenation. Payloads stay raw ``bytes``: the server stores most journal
entries as-is and parses only what it must act on (``decode_frame``).

Header (8 bytes, big-endian): u16 message type, u16 flags (``0x8000`` = REQUESTED_ACK, the rest
reserved), u32 payload length.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message

from restate_server.protocol import messages, protocol_pb2 as pb

__all__ = [
    "HEADER_SIZE",
    "PROTOCOL_VIOLATION",
    "REQUESTED_ACK",
    "Decoder",
    "Frame",
    "MessageTooLargeError",
    "ProtocolError",
    "decode_frame",
    "encode_frame",
    "encode_message",
    "message_type_of",
]

HEADER_SIZE = 8
REQUESTED_ACK = 0x8000
"""Flag bit (of the u16 flags) asking the runtime for a CommandAck / ProposeRunCompletionAck."""

PROTOCOL_VIOLATION = 571
"""Restate error code for a malformed stream (the SDKs use the same code)."""

_HEADER = struct.Struct(">HHI")
_FIRST_COMMAND = 0x0400
_KNOWN_CONTROL = frozenset(t for t in messages.MessageType if t < _FIRST_COMMAND)
_unpack_header = _HEADER.unpack_from
_pack_header = _HEADER.pack


class ProtocolError(Exception):
    """The peer broke the framing or sent an undecodable message; carries a Restate error code."""

    code: int = PROTOCOL_VIOLATION
    error_code: str = "RT0012"
    """Upstream's documented error code for a failure of this kind (protocol violation)."""

    def __init__(self, message: str, *, code: int | None = None, decoded: list[Frame] | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.decoded: list[Frame] = decoded if decoded is not None else []
        """Complete frames that preceded the error in the chunk being fed (``Decoder.feed``)."""


class MessageTooLargeError(ProtocolError):
    """A frame announced a payload at or above the configured size limit.

    Raised as soon as the frame's header is read, before any of its payload is buffered, so an
    announced size costs no memory.
    """

    error_code = "RT0003"


@dataclass(frozen=True, slots=True)
class Frame:
    """One framed message with its payload still encoded."""

    type: int
    flags: int
    payload: bytes

    @property
    def requested_ack(self) -> bool:
        """True if the SDK asked for an ack of this command or run proposal."""
        return bool(self.flags & REQUESTED_ACK)


class Decoder:
    """Bytes in, frames out; keeps partial frames between calls, never touches a socket."""

    __slots__ = ("_buf", "_max")

    def __init__(self, max_message_size: int | None = None) -> None:
        self._buf = bytearray()
        self._max = max_message_size

    @property
    def buffered(self) -> int:
        """Bytes held for a frame not yet complete."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Consume a chunk and return every frame it completes, in order.

        A header with an unknown control type, or announcing a payload at or above the size limit,
        raises at once; the frames completed before it in this chunk ride on the error (``decoded``).
        """
        buf = self._buf
        if buf:
            buf += data
            src: bytes | bytearray = buf
        else:
            # Fast path: nothing pending, parse the chunk in place.
            src = data
        end = len(src)
        frames: list[Frame] = []
        off = 0
        limit = self._max
        error: ProtocolError | None = None
        # One copy per payload (memoryview slice -> bytes); the view is released before the
        # bytearray is trimmed, as an exported buffer cannot be resized.
        with memoryview(src) as view:
            while end - off >= HEADER_SIZE:
                ty, flags, length = _unpack_header(view, off)
                # Both checks look at the header alone: a bad frame costs nothing to buffer.
                if ty < _FIRST_COMMAND and ty not in _KNOWN_CONTROL:
                    error = ProtocolError(f"unknown message code {ty:#x}", decoded=frames)
                    break
                if limit is not None and length >= limit:
                    error = MessageTooLargeError(
                        f"hit message size limit: {length} >= {limit}", decoded=frames
                    )
                    break
                stop = off + HEADER_SIZE + length
                if stop > end:
                    break
                frames.append(Frame(ty, flags, view[off + HEADER_SIZE : stop].tobytes()))
                off = stop
        if error is not None:
            buf.clear()  # nothing after a bad header can be framed: the stream is unusable
            raise error
        if src is buf:
            if off:
                del buf[:off]  # CPython trims a bytearray's head without moving the tail
        elif off < end:
            buf += memoryview(data)[off:]
        return frames

    def close(self) -> None:
        """Signal end of stream; a half-read frame left behind is a protocol error."""
        if self._buf:
            pending = len(self._buf)
            self._buf.clear()
            raise ProtocolError(f"stream ended inside a frame ({pending} bytes left over)")


def encode_frame(type: int, payload: bytes, *, requested_ack: bool = False) -> bytes:
    """Frame an already-encoded payload."""
    return _pack_header(type, REQUESTED_ACK if requested_ack else 0, len(payload)) + payload


_TYPE_OF: dict[type[Message], int] = {cls: int(t) for t, cls in messages.MESSAGE_CLASSES.items()}
_TYPE_OF[pb.SuspensionMessageV6] = int(messages.MessageType.SUSPENSION)


def message_type_of(msg: Message) -> int:
    """The wire type code of a protocol message instance."""
    try:
        return _TYPE_OF[type(msg)]
    except KeyError:
        raise TypeError(f"{type(msg).__name__} is not a service-protocol message") from None


def encode_message(msg: Message, *, requested_ack: bool = False) -> bytes:
    """Serialize and frame a protocol message (type looked up from its class)."""
    t = message_type_of(msg)
    payload = msg.SerializeToString()
    return _pack_header(t, REQUESTED_ACK if requested_ack else 0, len(payload)) + payload


def decode_frame(frame: Frame, *, version: int = 7) -> Message:
    """Parse a frame's payload into its class.

    Suspension uses the V7 layout unless ``version`` < 7, then ``SuspensionMessageV6``.
    Custom and unknown types have no class and raise ``ProtocolError``.
    """
    t = frame.type
    cls = (
        pb.SuspensionMessageV6
        if t == messages.MessageType.SUSPENSION and version < 7
        else messages.MESSAGE_CLASSES.get(t)
    )
    if cls is None:
        raise ProtocolError(f"no message class for type {t:#06x}")
    try:
        return cls.FromString(frame.payload)
    except DecodeError as exc:
        raise ProtocolError(f"cannot decode message type {t:#06x}: {exc}") from exc
