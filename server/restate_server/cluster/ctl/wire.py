"""Unary gRPC over `h2` for the control services `restatectl` calls, and the node-port connection router.

Why not grpcio: `restatectl` (tonic) compresses every request with zstd and says so in `grpc-encoding`;
grpc's C core rejects that header before any handler runs (it decodes identity, deflate and gzip only),
so no grpcio servicer can ever see those calls. This module speaks the little of gRPC they need
(unary calls: one request message in, one response message or a status out) directly over `h2`, the
way `web.h2c` serves HTTP/2: `h2` does the protocol, this module only moves bytes and events.

A connection is routed by its opening (`Router`): one whose first `:path` names an upstream control
service (`CONTROL_SERVICES`) is served here for its whole life (a tonic channel calls one node's
services over one connection); any other, and every grpcio client (recognised by its SETTINGS), goes
to the node's grpcio server, bytes unchanged. Nothing is consumed while deciding: the router only peeks.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import struct
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Protocol, TypeVar, cast

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack
import zstandard
from google.protobuf.message import DecodeError, Message

log = logging.getLogger(__name__)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CONTROL_SERVICES = ("/restate.node_ctl_svc.", "/restate.cluster_ctrl.", "/restate.metadata_server_svc.")
"""Path prefixes of the upstream services served here (unknown methods among them: UNIMPLEMENTED)."""

MAX_MESSAGE = 4 * 1024 * 1024
"""Bytes a request (compressed or not) may have: control requests are a few bytes; tonic's default cap."""
ROUTER_PEEK_LIMIT = 64 * 1024
"""Bytes held while looking for the first request's path; past that the connection goes to grpcio."""
ROUTE_WAIT = 0.5
"""Seconds an opening may go without its first request before the connection goes to grpcio (a client
that waits for the server's SETTINGS, see `Router`; tonic sends its request with the preface)."""

# gRPC status codes (grpc/doc/statuscodes.md)
OK = 0
INVALID_ARGUMENT = 3
NOT_FOUND = 5
FAILED_PRECONDITION = 9
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
RESOURCE_EXHAUSTED = 8

_FRAME = struct.Struct(">BI")  # gRPC message prefix: compressed flag, length
_HEADERS, _SETTINGS, _CONTINUATION = 0x1, 0x4, 0x9
_ACK, _END_HEADERS, _PADDED, _PRIORITY = 0x1, 0x4, 0x8, 0x20
_GRPC_CORE_SETTING = 0xFE03  # GRPC_ALLOW_TRUE_BINARY_METADATA, announced by grpc's C core only
_MESSAGE_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")  # grpc-message escaping


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _text_headers(headers: Iterable[tuple[str | bytes, str | bytes]]) -> dict[str, str]:
    return {_text(name): _text(value) for name, value in headers}


class GrpcError(Exception):
    """A call's failure as a gRPC status (code and message) for the client."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Unary = Callable[[bytes], Awaitable[bytes]]
"""A method: the request message's bytes in, the response message's bytes out (or `GrpcError`)."""

Req = TypeVar("Req", bound=Message)


def unary(request_type: type[Req], call: Callable[[Req], Awaitable[Message]]) -> Unary:
    """A typed handler as a `Unary`: parses the request, serializes the response."""

    async def invoke(body: bytes) -> bytes:
        request = request_type()
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise GrpcError(INVALID_ARGUMENT, f"malformed {request_type.__name__}: {exc}") from None
        return (await call(request)).SerializeToString()

    return invoke


def decode_request(body: bytes, encoding: str) -> bytes:
    """The one message of a unary request body (length-prefixed, maybe compressed)."""
    if len(body) < _FRAME.size:
        raise GrpcError(INTERNAL, "missing request message")
    compressed, length = _FRAME.unpack_from(body)
    payload = body[_FRAME.size : _FRAME.size + length]
    if len(payload) != length or len(body) != _FRAME.size + length:
        raise GrpcError(INTERNAL, "a unary call carries exactly one request message")
    if not compressed:
        return payload
    match encoding:
        case "zstd":
            try:
                return zstandard.ZstdDecompressor().decompress(payload, max_output_size=MAX_MESSAGE)
            except zstandard.ZstdError as exc:
                raise GrpcError(INTERNAL, f"cannot decompress the request: {exc}") from None
        case "gzip":
            try:
                return gzip.decompress(payload)
            except (OSError, EOFError) as exc:
                raise GrpcError(INTERNAL, f"cannot decompress the request: {exc}") from None
        case _:
            raise GrpcError(UNIMPLEMENTED, f"message compression {encoding or 'identity'!r} is not supported")


def encode_response(message: bytes) -> bytes:
    return _FRAME.pack(0, len(message)) + message


class GrpcConnection(asyncio.Protocol):
    """One HTTP/2 connection whose streams are unary calls of `methods` (keyed by `:path`)."""

    def __init__(self, methods: Mapping[str, Unary], on_lost: Callable[[GrpcConnection], None]) -> None:
        self._methods = methods
        self._on_lost = on_lost
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self._requests: dict[int, tuple[dict[str, str], bytearray]] = {}
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._window = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    # ---- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._h2.local_settings = h2.settings.Settings(
            client=False, initial_values={h2.settings.SettingCodes.ENABLE_PUSH: 0}
        )
        self._h2.initiate_connection()
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.debug("control gRPC connection: protocol error, closing: %s", exc)
            self._flush()
            self.close()
            return
        for event in events:
            self._event(event)
        self._flush()

    def eof_received(self) -> bool:
        return True  # answers may still be on their way; the client closes the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        for call in self._calls.values():
            call.cancel()
        self._calls.clear()
        self._window.set()
        self._on_lost(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # ---- h2 events
    def _event(self, event: h2.events.Event) -> None:
        match event:
            case h2.events.RequestReceived(stream_id=stream_id, headers=headers):
                self._requests[stream_id] = (_text_headers(headers or []), bytearray())
            case h2.events.DataReceived(stream_id=stream_id, data=data, flow_controlled_length=length):
                self._h2.acknowledge_received_data(length or 0, stream_id)
                request = self._requests.get(stream_id)
                if request is not None and data:
                    request[1].extend(data)
                    if len(request[1]) > MAX_MESSAGE + _FRAME.size:
                        del self._requests[stream_id]
                        self._trailers_only(stream_id, RESOURCE_EXHAUSTED, "request too large")
            case h2.events.StreamEnded(stream_id=stream_id):
                request = self._requests.pop(stream_id, None)
                if request is not None:
                    self._calls[stream_id] = asyncio.get_running_loop().create_task(
                        self._serve(stream_id, request[0], bytes(request[1])), name=f"ctl-grpc-{stream_id}"
                    )
            case h2.events.StreamReset(stream_id=stream_id):
                self._requests.pop(stream_id, None)
                call = self._calls.pop(stream_id, None)
                if call is not None:
                    call.cancel()
            case h2.events.WindowUpdated():
                self._window.set()
            case h2.events.ConnectionTerminated():
                self.close()
            case _:
                pass

    # ---- calls
    async def _serve(self, stream_id: int, headers: dict[str, str], body: bytes) -> None:
        try:
            path = headers.get(":path", "")
            method = self._methods.get(path)
            if method is None:
                raise GrpcError(UNIMPLEMENTED, f"method {path} is not implemented by this node")
            response = await method(decode_request(body, headers.get("grpc-encoding", "identity")))
            await self._respond(stream_id, encode_response(response))
        except GrpcError as exc:
            self._trailers_only(stream_id, exc.code, exc.message)
        except Exception as exc:  # a handler bug: the client gets INTERNAL, the node keeps serving
            log.exception("control gRPC call %s failed", headers.get(":path"))
            self._trailers_only(stream_id, INTERNAL, str(exc))
        finally:
            self._calls.pop(stream_id, None)
            self._flush()

    async def _respond(self, stream_id: int, data: bytes) -> None:
        self._send_headers(stream_id, [(":status", "200"), ("content-type", "application/grpc")], False)
        while data:
            window = min(self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size)
            if window <= 0:
                self._window.clear()
                self._flush()
                await self._window.wait()
                if self.transport is None:
                    return
                continue
            self._h2.send_data(stream_id, data[:window])
            data = data[window:]
        self._send_headers(stream_id, [("grpc-status", str(OK))], True)

    def _trailers_only(self, stream_id: int, code: int, message: str) -> None:
        headers = [
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", str(code)),
            ("grpc-message", urllib.parse.quote(message, safe=_MESSAGE_SAFE)),
        ]
        self._send_headers(stream_id, headers, True)

    def _send_headers(self, stream_id: int, headers: list[tuple[str, str]], end_stream: bool) -> None:
        if self.transport is None:
            return
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._h2.send_headers(stream_id, headers, end_stream=end_stream)

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)


def first_path(data: bytes) -> str | None:
    """The `:path` of the first request on an HTTP/2 connection that began with `data`; "" when the
    client is grpc's C core (see `Router`); None while the bytes do not tell yet.

    Raises ValueError when the bytes are not an HTTP/2 client's opening.
    """
    if len(data) < len(PREFACE) and PREFACE.startswith(data):
        return None
    if not data.startswith(PREFACE):
        raise ValueError("not an HTTP/2 preface")
    offset, block = len(PREFACE), b""
    while offset + 9 <= len(data):
        length = int.from_bytes(data[offset : offset + 3], "big")
        kind, flags = data[offset + 3], data[offset + 4]
        payload = data[offset + 9 : offset + 9 + length]
        if len(payload) < length:
            return None
        offset += 9 + length
        if kind == _SETTINGS and not flags & _ACK and _GRPC_CORE_SETTING in _setting_ids(payload):
            return ""
        if kind == _HEADERS:
            if flags & _PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            if flags & _PRIORITY:
                payload = payload[5:]
            block = payload
        elif kind == _CONTINUATION and block:
            block += payload
        else:
            continue
        if flags & _END_HEADERS:
            try:
                headers = hpack.Decoder().decode(block, raw=True)
            except hpack.HPACKError as exc:
                raise ValueError(f"undecodable first header block: {exc}") from None
            return next((_text(value) for name, value in headers if name == b":path"), "")
    return None


def _setting_ids(payload: bytes) -> set[int]:
    return {int.from_bytes(payload[i : i + 2], "big") for i in range(0, len(payload) - 5, 6)}


class Choose(Protocol):
    def __call__(self, path: str, opening: bytes) -> asyncio.Protocol | None:
        """The protocol serving a connection whose first request is for `path` (None: close it)."""
        ...


class Router(asyncio.Protocol):
    """Holds an HTTP/2 connection's opening bytes until they tell who serves it, then hands the
    connection (those bytes first) and every later event to the protocol `choose` picks.

    A tonic client (`restatectl`) sends its first request right behind the preface, so its path
    decides. grpc's C core (grpcio: this cluster's own nodes, Replay API clients) waits for the
    server's SETTINGS before its first request, which nobody sends until the connection is handed
    over, so it is recognised by the setting it alone announces (`GRPC_ALLOW_TRUE_BINARY_METADATA`);
    any other client that waits goes to `choose("")` after `ROUTE_WAIT`.
    """

    def __init__(self, choose: Choose) -> None:
        self._choose = choose
        self._transport: asyncio.Transport | None = None
        self._held = b""
        self._eof = False
        self._target: asyncio.Protocol | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._timer = asyncio.get_running_loop().call_later(ROUTE_WAIT, self._hand_over, "")

    def data_received(self, data: bytes) -> None:
        if self._target is not None:
            self._target.data_received(data)
            return
        self._held += data
        try:
            path = first_path(self._held)
        except ValueError:
            path = ""  # not ours to judge: the gRPC server answers malformed connections
        if path is not None or len(self._held) >= ROUTER_PEEK_LIMIT:
            self._hand_over(path or "")

    def _hand_over(self, path: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self._transport
        if transport is None or self._target is not None:
            return
        target = self._choose(path, self._held)
        if target is None:
            transport.close()
            return
        held, self._held = self._held, b""
        self._target = target
        target.connection_made(transport)
        target.data_received(held)
        if self._eof:
            target.eof_received()

    def eof_received(self) -> bool | None:
        if self._target is None:
            self._eof = True
            return True
        return self._target.eof_received()

    def pause_writing(self) -> None:
        if self._target is not None:
            self._target.pause_writing()

    def resume_writing(self) -> None:
        if self._target is not None:
            self._target.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._target is not None:
            self._target.connection_lost(exc)
