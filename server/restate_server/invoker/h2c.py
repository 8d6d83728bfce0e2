"""A full-duplex HTTP/2 cleartext (prior knowledge) client on `h2`, for bidi invocation streams.

httpx and aiohttp cannot keep a request body open while reading the response, which bidi mode
needs. This module only moves bytes and events between an asyncio transport and h2's sans-IO state
machine (the shape of httpcore's `_async/http2.py`); each stream reports to a `StreamListener`.
Connections are pooled per (host, port) and opened as streams run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from restate_server.invoker.streams import StreamListener

log = logging.getLogger(__name__)

# Streams per connection, whatever the peer advertises: hypercorn (the Python SDK's usual server)
# advertises any number but drops the whole connection past 1,000 open streams (its priority tree's
# limit). More invocations open more connections; the invoker's concurrency limit bounds them.
MAX_STREAMS_PER_CONNECTION = 128

# Large receive windows: journals and state can be megabytes, and window updates cost round trips.
_WINDOW = 16 * 1024 * 1024


class ConnectionLostError(ConnectionError):
    """The HTTP/2 connection closed or was reset while a stream was open."""


class H2Stream:
    """One request stream on a pooled connection (a `streams.BidiStream`)."""

    def __init__(self, conn: H2ClientConnection, stream_id: int, listener: StreamListener) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.listener = listener
        self.closed = False

    def send(self, data: bytes | memoryview, *, end_stream: bool = False) -> None:
        """Queue data for sending (respecting flow control); never blocks."""
        self.conn.send(self.stream_id, data, end_stream)

    def end(self) -> None:
        self.conn.send(self.stream_id, b"", True)

    def reset(self) -> None:
        self.closed = True
        self.conn.reset(self.stream_id)


class H2ClientConnection(asyncio.Protocol):
    def __init__(self) -> None:
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_inbound_headers=False,
            validate_outbound_headers=False,  # we build the headers; validation costs more than the I/O
            normalize_outbound_headers=False,
        )
        self.h2 = h2.connection.H2Connection(config=config)
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, H2Stream] = {}
        # per stream: pending outgoing (data, end_stream) waiting for flow-control window
        self._pending: dict[int, list[tuple[bytes | memoryview, bool]]] = {}
        self.closed = False
        self._receiving = False  # inside data_received: flush once at the end instead of per send
        self._connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # ---- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses
        self.h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(_WINDOW)
        self._flush()
        self._connected.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail_all(ConnectionLostError(f"HTTP/2 protocol error: {exc}"))
            self._flush()
            if self.transport is not None:
                self.transport.close()
            return
        self._receiving = True
        try:
            for event in events:
                self._dispatch(event)
        finally:
            self._receiving = False
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all(ConnectionLostError(f"connection closed: {exc}" if exc else "connection closed"))

    # ---- events
    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            if event.flow_controlled_length:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.listener.on_data(event.data)
            if event.stream_ended is not None:
                self._finish(event.stream_id)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                headers = {k.decode().lower(): v.decode() for k, v in event.headers}
                status = int(headers.pop(":status", "0"))
                stream.listener.on_headers(status, headers)
            if event.stream_ended is not None:
                self._finish(event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self._finish(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            self._pending.pop(event.stream_id, None)
            if stream is not None:
                stream.closed = True
                stream.listener.on_error(
                    ConnectionLostError(f"stream reset by peer (code {event.error_code})")
                )
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self._drain_pending()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closed = True
            self._fail_all(
                ConnectionLostError(f"GOAWAY received (code {event.error_code})"), above=event.last_stream_id
            )

    def _finish(self, stream_id: int) -> None:
        stream = self.streams.pop(stream_id, None)
        self._pending.pop(stream_id, None)
        if stream is not None:
            stream.closed = True
            stream.listener.on_end()

    def _fail_all(self, error: Exception, above: int | None = None) -> None:
        self.closed = True
        for stream_id in list(self.streams):
            if above is not None and stream_id <= above:
                continue
            stream = self.streams.pop(stream_id)
            self._pending.pop(stream_id, None)
            stream.closed = True
            stream.listener.on_error(error)

    # ---- sending
    def open_stream(
        self,
        path: str,
        authority: str,
        headers: Sequence[tuple[str, str]],
        listener: StreamListener,
        body: bytes = b"",
    ) -> H2Stream:
        """Open a request stream; `body` goes out in the same write as the headers."""
        stream_id = self.h2.get_next_available_stream_id()
        request = [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
            *((k.encode(), v.encode()) for k, v in headers),
        ]
        self.h2.send_headers(stream_id, request, end_stream=False)
        stream = H2Stream(self, stream_id, listener)
        self.streams[stream_id] = stream
        if body:
            self._send_now(stream_id, body, False)
        self._flush()
        return stream

    def send(self, stream_id: int, data: bytes | memoryview, end_stream: bool) -> None:
        if stream_id not in self.streams:
            return
        pending = self._pending.get(stream_id)
        if pending:
            pending.append((data, end_stream))
            return
        self._send_now(stream_id, data, end_stream)
        if not self._receiving:
            self._flush()

    def _send_now(self, stream_id: int, data: bytes | memoryview, end_stream: bool) -> None:
        """Send as much as flow control allows; park the rest (in order) until a window update.

        Frames are cut as memoryview slices: a large message (megabytes, in frames of 16 KiB) is
        never copied whole again for each frame or each window update.
        """
        try:
            if not data:
                if end_stream:
                    self.h2.end_stream(stream_id)
                return
            view = memoryview(data)
            while view:
                window = min(self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size)
                if window <= 0:
                    self._pending.setdefault(stream_id, []).append((view, end_stream))
                    return
                chunk, view = view[:window], view[window:]
                self.h2.send_data(stream_id, chunk, end_stream=end_stream and not view)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            return

    def _drain_pending(self) -> None:
        for stream_id in list(self._pending):
            queued = self._pending.pop(stream_id)
            for index, (data, end_stream) in enumerate(queued):
                self._send_now(stream_id, data, end_stream)
                if stream_id in self._pending:  # blocked again: keep the rest in order
                    self._pending[stream_id].extend(queued[index + 1 :])
                    break

    def reset(self, stream_id: int) -> None:
        self.streams.pop(stream_id, None)
        self._pending.pop(stream_id, None)
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            self.h2.reset_stream(stream_id)
        self._flush()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    @property
    def available(self) -> bool:
        if self.closed or self.transport is None or self.transport.is_closing():
            return False
        limit = min(self.h2.remote_settings.max_concurrent_streams, MAX_STREAMS_PER_CONNECTION)
        return len(self.streams) < limit

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            try:
                self.h2.close_connection()
                self._flush()
            except h2.exceptions.ProtocolError:
                pass
            self.transport.close()


class H2Pool:
    """HTTP/2 connections per (host, port), opened on demand."""

    def __init__(self, connect_timeout: float = 10.0) -> None:
        self._conns: dict[tuple[str, int], list[H2ClientConnection]] = {}
        self._connecting: dict[tuple[str, int], asyncio.Future[H2ClientConnection]] = {}
        self._connect_timeout = connect_timeout

    async def open_stream(
        self,
        host: str,
        port: int,
        path: str,
        headers: Sequence[tuple[str, str]],
        listener: StreamListener,
        body: bytes = b"",
    ) -> H2Stream:
        conn = await self._connection(host, port)
        return conn.open_stream(path, f"{host}:{port}", headers, listener, body)

    async def _connection(self, host: str, port: int) -> H2ClientConnection:
        key = (host, port)
        conns = self._conns.setdefault(key, [])
        conns[:] = [c for c in conns if not c.closed]
        for conn in conns:
            if conn.available:
                return conn
        pending = self._connecting.get(key)
        if pending is not None:
            conn = await asyncio.shield(pending)
            if conn.available:
                return conn
        future: asyncio.Future[H2ClientConnection] = asyncio.get_running_loop().create_future()
        self._connecting[key] = future
        try:
            loop = asyncio.get_running_loop()
            _transport, conn = await asyncio.wait_for(
                loop.create_connection(H2ClientConnection, host, port), self._connect_timeout
            )
            await asyncio.wait_for(conn._connected, self._connect_timeout)
            conns.append(conn)
            future.set_result(conn)
            return conn
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved
            raise
        finally:
            self._connecting.pop(key, None)

    def close(self) -> None:
        for conns in self._conns.values():
            for conn in conns:
                conn.close()
        self._conns.clear()
