"""A scripted HTTP/2 cleartext server on 127.0.0.1 for the h2c client's tests (h2 on the server side).

Each request stream is recorded (`ServerStream`); the test answers through the server's methods,
which write frames at once. Settings (max concurrent streams, initial window) are chosen per server.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.settings


@dataclass
class ServerStream:
    conn: ServerConnection
    stream_id: int
    headers: dict[str, str]
    data: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: bool = False


class ServerConnection(asyncio.Protocol):
    def __init__(self, server: H2Server) -> None:
        self.server = server
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, ServerStream] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.append(self)
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.server.max_streams,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self.server.initial_window,
            },
        )
        self.h2.initiate_connection()
        self.flush()

    def data_received(self, data: bytes) -> None:
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                stream = ServerStream(self, event.stream_id, dict(event.headers))  # type: ignore[arg-type]
                self.streams[event.stream_id] = stream
                self.server.requests.put_nowait(stream)
            elif isinstance(event, h2.events.DataReceived):
                self.streams[event.stream_id].data += event.data
                if self.server.auto_window:
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.streams[event.stream_id].ended = True
            elif isinstance(event, h2.events.StreamReset):
                self.streams[event.stream_id].reset = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.server.goaways += 1
        self.flush()
        self.server.changed.set()

    def flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.h2.data_to_send())


class H2Server:
    def __init__(self, *, max_streams: int = 1000, initial_window: int = 65535, auto_window: bool = True):
        self.max_streams = max_streams
        self.initial_window = initial_window
        self.auto_window = auto_window
        self.connections: list[ServerConnection] = []
        self.requests: asyncio.Queue[ServerStream] = asyncio.Queue()
        self.changed = asyncio.Event()
        self.goaways = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> H2Server:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: ServerConnection(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        for conn in self.connections:
            if conn.transport is not None:
                conn.transport.close()
        self._server.close()
        await self._server.wait_closed()

    async def request(self) -> ServerStream:
        return await asyncio.wait_for(self.requests.get(), 5)

    async def until(self, check: object) -> None:
        """Wait for the client's frames to satisfy `check()` (a deadline, not a fixed sleep)."""
        async with asyncio.timeout(5):
            while not check():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()

    # answers
    def respond(self, stream: ServerStream, status: int = 200, *, end: bool = False, **headers: str) -> None:
        stream.conn.h2.send_headers(
            stream.stream_id, [(":status", str(status)), *headers.items()], end_stream=end
        )
        stream.conn.flush()

    def send(self, stream: ServerStream, data: bytes, *, end: bool = False) -> None:
        stream.conn.h2.send_data(stream.stream_id, data, end_stream=end)
        stream.conn.flush()

    def reset(self, stream: ServerStream, code: int = 8) -> None:
        stream.conn.h2.reset_stream(stream.stream_id, code)
        stream.conn.flush()

    def goaway(self, conn: ServerConnection, last_stream_id: int) -> None:
        conn.h2.close_connection(last_stream_id=last_stream_id)
        conn.flush()

    def window_update(self, stream: ServerStream, size: int) -> None:
        stream.conn.h2.increment_flow_control_window(size, stream.stream_id)
        stream.conn.h2.increment_flow_control_window(size)
        stream.conn.flush()
