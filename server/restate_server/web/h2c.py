"""HTTP/2 with prior knowledge (h2c) in front of the same aiohttp applications that serve HTTP/1.1.

Upstream's listeners (hyper's auto connection) answer both protocols on one port; aiohttp only speaks
HTTP/1.x. The guard picks the protocol from a connection's first bytes (`select`): the 24-byte h2
preface makes it an `H2CConnection`, anything else goes to aiohttp's request handler untouched.

`H2CConnection` only moves bytes and events, as httpcore does around `h2`: `h2` does the protocol,
and each stream becomes an aiohttp request handed to the application's handler
(`web.Server.request_handler`), so routes, middlewares, limits and error rendering are the ones the
HTTP/1.1 path uses. The response comes back through `StreamWriter`, which turns aiohttp's status line,
headers and body writes into HEADERS and DATA frames, waiting for flow-control window and for the
transport to drain. Request bodies are acknowledged to the peer as the handler consumes them (the
reader pauses past its limit), so a client cannot make a stream buffer more than its window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.http_writer import HttpVersion11
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from restate_server.web import request_target

log = logging.getLogger(__name__)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_CONCURRENT_STREAMS = 200  # hyper's server default, which upstream keeps
MAX_HEADERS = 128  # as aiohttp's HTTP/1.1 parser (`max_headers`)
READ_LIMIT = 2**16  # request-body bytes a stream buffers before it stops acknowledging the window
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"})


def select(
    first: bytes, http1: Callable[[], asyncio.Protocol], h2: Callable[[], asyncio.Protocol]
) -> asyncio.Protocol | None:
    """The protocol for a connection that began with `first`; None while it may still be the preface."""
    if first.startswith(PREFACE):
        return h2()
    if len(first) < len(PREFACE) and PREFACE.startswith(first):
        return None
    return http1()


class _StreamProtocol:
    """What an aiohttp request and its body reader expect of the protocol that carries them.

    `StreamReader` pauses reading past its limit and resumes below it; for a stream that means
    holding back the window acknowledgement of what it received meanwhile.
    """

    max_field_size = 8190
    max_headers = MAX_HEADERS
    ssl_context = None

    def __init__(self, connection: H2CConnection, stream_id: int) -> None:
        self._connection = connection
        self._stream_id = stream_id
        self._reading_paused = False
        self.unacknowledged = 0
        transport = connection.transport
        self.transport = transport
        self.peername = transport.get_extra_info("peername") if transport is not None else None
        self.sockname = transport.get_extra_info("sockname") if transport is not None else None

    @property
    def connected(self) -> bool:
        return self._connection.transport is not None

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self, resume_parser: bool = True) -> None:
        self._reading_paused = False
        if self.unacknowledged:
            self._connection.acknowledge(self._stream_id, self.unacknowledged)
            self.unacknowledged = 0

    def received(self, length: int) -> None:
        """`length` flow-controlled bytes arrived: acknowledge now, or once the reader drains."""
        if self._reading_paused:
            self.unacknowledged += length
        else:
            self._connection.acknowledge(self._stream_id, length)


class StreamWriter(AbstractStreamWriter):
    """aiohttp's response writes, as HEADERS and DATA frames of one stream."""

    def __init__(self, connection: H2CConnection, stream_id: int) -> None:
        self._connection = connection
        self._stream_id = stream_id
        self._headers: list[tuple[str, str]] | None = None
        self._headers_sent = False
        self._ended = False
        self.length = None

    async def write_headers(self, status_line: str, headers: CIMultiDict[str]) -> None:
        status = status_line.split(" ", 2)[1]
        self._headers = [(":status", status)] + [
            (name.lower(), value) for name, value in headers.items() if name.lower() not in _HOP_BY_HOP
        ]

    def send_headers(self) -> None:
        if not self._headers_sent and self._headers is not None:
            self._headers_sent = True
            self._connection.send_headers(self._stream_id, self._headers, end_stream=False)

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if not chunk:
            return
        self.send_headers()
        self.output_size += len(chunk)
        await self._connection.send_data(self._stream_id, bytes(chunk))

    async def write_eof(self, chunk: bytes = b"") -> None:
        if self._ended:
            return
        if chunk:
            await self.write(chunk)
        self._ended = True
        if not self._headers_sent and self._headers is not None:
            self._headers_sent = True
            self._connection.send_headers(self._stream_id, self._headers, end_stream=True)
        else:
            self._connection.end_stream(self._stream_id)

    async def drain(self) -> None:
        await self._connection.drain()

    def enable_compression(self, encoding: str = "deflate", strategy: int | None = None) -> None:
        raise NotImplementedError("response compression is not offered over h2c")

    def enable_chunking(self) -> None:
        """HTTP/2 frames bodies itself: nothing to do."""


class _Stream:
    """One request in flight: its body reader, its protocol view, and the task serving it."""

    def __init__(self, connection: H2CConnection, stream_id: int, loop: asyncio.AbstractEventLoop) -> None:
        self.protocol = _StreamProtocol(connection, stream_id)
        self.reader = StreamReader(cast(Any, self.protocol), READ_LIMIT, loop=loop)
        self.writer = StreamWriter(connection, stream_id)
        self.task: asyncio.Task[None] | None = None
        self.window_open = asyncio.Event()


class H2CConnection(asyncio.Protocol):
    """One h2c connection: every stream is served as a request of `server`'s application."""

    def __init__(
        self, server: web.Server, idle_timeout: float, on_lost: Callable[[H2CConnection], None]
    ) -> None:
        self._server = server
        self._idle_timeout = idle_timeout
        self._on_lost = on_lost
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self._h2 = h2.connection.H2Connection(config=config)
        self._streams: dict[int, _Stream] = {}
        self._writable = asyncio.Event()
        self._writable.set()
        self._idle: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None

    # ---- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        self._h2.initiate_connection()
        self._flush()
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.debug("h2c protocol error, closing the connection: %s", exc)
            self._flush()
            self.close()
            return
        for event in events:
            self._dispatch(event)
        self._flush()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._on_lost(self)
        self._writable.set()
        if self._idle is not None:
            self._idle.cancel()
        for stream in self._streams.values():
            stream.reader.feed_eof()
            stream.window_open.set()
            if stream.task is not None:
                stream.task.cancel()
        self._streams.clear()

    # ---- events
    def _dispatch(self, event: h2.events.Event) -> None:
        match event:
            case h2.events.RequestReceived():
                self._request(event)
            case h2.events.DataReceived():
                stream = self._streams.get(event.stream_id) if event.stream_id else None
                if stream is None:
                    self.acknowledge(event.stream_id or 0, event.flow_controlled_length)
                else:
                    stream.reader.feed_data(event.data)
                    stream.protocol.received(event.flow_controlled_length)
            case h2.events.StreamEnded():
                if (stream := self._streams.get(event.stream_id or 0)) is not None:
                    stream.reader.feed_eof()
            case h2.events.StreamReset():
                if (stream := self._streams.pop(event.stream_id or 0, None)) is not None:
                    stream.reader.feed_eof()
                    if stream.task is not None:
                        stream.task.cancel()
            case h2.events.WindowUpdated():
                if not event.stream_id:  # the connection's window: every stream may go on
                    for stream in self._streams.values():
                        stream.window_open.set()
                elif (stream := self._streams.get(event.stream_id)) is not None:
                    stream.window_open.set()
            case h2.events.ConnectionTerminated():
                self.close()
            case _:
                pass  # settings, pings and priorities are h2's to answer

    def _request(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        assert stream_id is not None
        loop = asyncio.get_running_loop()
        stream = _Stream(self, stream_id, loop)
        self._streams[stream_id] = stream
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        message = _message(event.headers or [])
        if message is None:
            del self._streams[stream_id]
            self._reset(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            self._arm_idle()
            return
        if event.stream_ended is not None:
            stream.reader.feed_eof()
        stream.task = loop.create_task(
            self._serve(stream_id, stream, message), name=f"h2c-stream-{stream_id}"
        )

    # ---- serving one stream
    async def _serve(self, stream_id: int, stream: _Stream, message: RawRequestMessage) -> None:
        try:
            task = asyncio.current_task()
            assert task is not None
            request = self._server.request_factory(
                message, stream.reader, cast(Any, stream.protocol), stream.writer, task
            )
            response = await self._handle(request)
            await response.prepare(request)
            await response.write_eof()
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("h2c stream %d failed", stream_id)
            self._reset(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        finally:
            self._finished(stream_id, stream)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """The application's response, as aiohttp's HTTP/1.1 handler would produce it."""
        try:
            return await self._server.request_handler(request)
        except web.HTTPException as exc:
            return exc
        except Exception:
            log.exception("Error handling request")
            return web.Response(status=500, text="500 Internal Server Error\n\nServer got itself in trouble")

    def _finished(self, stream_id: int, stream: _Stream) -> None:
        if self._streams.get(stream_id) is stream:
            del self._streams[stream_id]
            open_stream = self._h2.streams.get(stream_id)
            if self.transport is not None and open_stream is not None and not open_stream.closed:
                # the response is complete: a request body the handler did not read is not wanted
                self._reset(stream_id, h2.errors.ErrorCodes.NO_ERROR)
        if not self._streams:
            self._arm_idle()

    # ---- sending (used by StreamWriter and _StreamProtocol)
    def send_headers(self, stream_id: int, headers: list[tuple[str, str]], *, end_stream: bool) -> None:
        if self.transport is None:
            return
        try:
            self._h2.send_headers(stream_id, headers, end_stream=end_stream)
        except h2.exceptions.H2Error as exc:
            log.debug("h2c stream %d: cannot send headers: %s", stream_id, exc)
        self._flush()

    async def send_data(self, stream_id: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.transport is None:
                raise ConnectionResetError("the h2c connection is closed")
            stream = self._streams.get(stream_id)
            window = min(self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size)
            if window <= 0:
                if stream is None:
                    raise ConnectionResetError("the h2c stream was reset")
                stream.window_open.clear()
                await stream.window_open.wait()
                continue
            self._h2.send_data(stream_id, bytes(view[:window]))
            view = view[window:]
            self._flush()
            await self.drain()

    def end_stream(self, stream_id: int) -> None:
        if self.transport is None:
            return
        try:
            self._h2.end_stream(stream_id)
        except h2.exceptions.H2Error as exc:
            log.debug("h2c stream %d: cannot end it: %s", stream_id, exc)
        self._flush()

    def acknowledge(self, stream_id: int, length: int) -> None:
        if self.transport is None or length == 0:
            return
        try:
            self._h2.acknowledge_received_data(length, stream_id)
        except h2.exceptions.H2Error:  # the stream is gone: the connection window still counts
            self._h2.increment_flow_control_window(length)
        self._flush()

    async def drain(self) -> None:
        await self._writable.wait()

    def _reset(self, stream_id: int, code: h2.errors.ErrorCodes) -> None:
        try:
            self._h2.reset_stream(stream_id, code)
        except h2.exceptions.H2Error:
            return
        self._flush()

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)

    # ---- closing
    def _arm_idle(self) -> None:
        if self._idle is None and self.transport is not None:
            self._idle = asyncio.get_running_loop().call_later(self._idle_timeout, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle = None
        if not self._streams:
            self.close()

    def close(self) -> None:
        """GOAWAY, then close: what shutdown and the idle timeout do."""
        if self.transport is None:
            return
        with contextlib.suppress(h2.exceptions.H2Error):
            self._h2.close_connection()
        self._flush()
        self.transport.close()


def _message(raw_headers: list[tuple[bytes, bytes]]) -> RawRequestMessage | None:
    """The HTTP/1.1-shaped request message of a HEADERS frame; None if it lacks what a request needs."""
    if len(raw_headers) > MAX_HEADERS:
        return None
    pseudo: dict[bytes, bytes] = {}
    headers: CIMultiDict[str] = CIMultiDict()
    raw: list[tuple[bytes, bytes]] = []
    for name, value in raw_headers:
        if name.startswith(b":"):
            pseudo[name] = value
            continue
        try:
            headers.add(name.decode("ascii"), value.decode("utf-8", "surrogateescape"))
        except UnicodeDecodeError:
            return None
        raw.append((name, value))
    method, target = pseudo.get(b":method"), pseudo.get(b":path")
    if method is None or target is None:
        return None
    authority = pseudo.get(b":authority")
    if authority is not None and "host" not in headers:
        headers["host"] = authority.decode("ascii", "replace")
        raw.append((b"host", authority))
    path = request_target.escape_non_ascii(target).decode("ascii")
    route, _, query = path.partition("?")
    try:
        url = URL.build(path=route, query_string=query, encoded=True)
    except ValueError:
        return None
    return RawRequestMessage(
        method.decode("ascii", "replace"),
        path,
        HttpVersion11,  # aiohttp's responses frame themselves by version; h2 frames are added here
        CIMultiDictProxy(headers),
        tuple(raw),
        False,
        None,
        False,
        False,
        url,
    )
