"""The h2c client against a scripted HTTP/2 server on loopback: streams, flow control, pooling, failures."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from h2_server import H2Server
from restate_server.invoker import h2c
from restate_server.invoker.h2c import ConnectionLostError, H2Pool, H2Stream


@dataclass
class Listener:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    ended: bool = False
    errors: list[Exception] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_headers(self, status: int, headers: dict[str, str]) -> None:
        self.status, self.headers = status, headers
        self.changed.set()

    def on_data(self, data: bytes) -> None:
        self.data += data
        self.changed.set()

    def on_end(self) -> None:
        self.ended = True
        self.changed.set()

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)
        self.changed.set()

    async def until(self, check: object) -> None:
        async with asyncio.timeout(5):
            while not check():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


async def open_stream(
    pool: H2Pool, server: H2Server, body: bytes = b"", headers: list[tuple[str, str]] | None = None
) -> tuple[H2Stream, Listener]:
    listener = Listener()
    stream = await pool.open_stream(
        "127.0.0.1", server.port, "/invoke/S/h", headers or [("x-a", "1")], listener, body
    )
    return stream, listener


async def test_request_and_response_stream_both_ways() -> None:
    pool = H2Pool()
    async with H2Server() as server:
        stream, listener = await open_stream(pool, server, b"replay")
        request = await server.request()
        assert request.headers[":path"] == "/invoke/S/h"
        assert request.headers[":authority"] == f"127.0.0.1:{server.port}"
        assert request.headers["x-a"] == "1"
        await server.until(lambda: bytes(request.data) == b"replay")
        server.respond(request, **{"content-type": "x/y", "X-Restate-Server": "sdk"})
        server.send(request, b"first")
        await listener.until(lambda: listener.data == b"first")
        assert (listener.status, listener.headers["content-type"]) == (200, "x/y")
        assert listener.headers["x-restate-server"] == "sdk"
        stream.send(b"more")
        stream.end()
        await server.until(lambda: request.ended)
        assert bytes(request.data) == b"replaymore"
        server.send(request, b"", end=True)
        await listener.until(lambda: listener.ended)
        assert stream.closed
        stream.send(b"after the end")  # ignored: the stream is gone
    pool.close()


async def test_headers_with_end_stream_and_peer_reset() -> None:
    pool = H2Pool()
    async with H2Server() as server:
        _, first = await open_stream(pool, server)
        request = await server.request()
        server.respond(request, 503, end=True)
        await first.until(lambda: first.ended)
        assert first.status == 503
        _, second = await open_stream(pool, server)
        request = await server.request()
        server.reset(request)
        await second.until(lambda: second.errors)
        assert isinstance(second.errors[0], ConnectionLostError)
        assert "reset by peer" in str(second.errors[0])
        assert len(server.connections) == 1  # both streams shared the connection
    pool.close()


async def test_client_reset_tells_the_server_and_silences_the_stream() -> None:
    pool = H2Pool()
    async with H2Server() as server:
        stream, listener = await open_stream(pool, server)
        request = await server.request()
        stream.reset()
        assert stream.closed
        await server.until(lambda: request.reset)
        stream.reset()  # twice is harmless
        stream.send(b"late")  # ignored
        assert bytes(request.data) == b""
        assert listener.status is None
    pool.close()


async def test_streams_beyond_the_peer_limit_open_another_connection() -> None:
    pool = H2Pool()
    async with H2Server(max_streams=2) as server:
        for _ in range(3):
            await open_stream(pool, server)
            await server.request()
        assert len(server.connections) == 2
    pool.close()


async def test_at_most_128_streams_per_connection_whatever_the_peer_allows() -> None:
    pool = H2Pool()
    async with H2Server(max_streams=10_000) as server:
        streams = [await open_stream(pool, server) for _ in range(h2c.MAX_STREAMS_PER_CONNECTION + 1)]
        await server.until(lambda: sum(len(c.streams) for c in server.connections) == len(streams))
        assert [len(c.streams) for c in server.connections] == [h2c.MAX_STREAMS_PER_CONNECTION, 1]
        streams[0][0].reset()  # a free slot on the first connection is used again
        await open_stream(pool, server)
        await server.until(lambda: len(server.connections[0].streams) == h2c.MAX_STREAMS_PER_CONNECTION + 1)
        assert len(server.connections) == 2
    pool.close()


async def test_concurrent_opens_share_one_new_connection() -> None:
    pool = H2Pool()
    async with H2Server() as server:
        await asyncio.gather(*(open_stream(pool, server) for _ in range(5)))
        assert len(server.connections) == 1
    pool.close()


async def test_goaway_fails_streams_it_did_not_process_and_retires_the_connection() -> None:
    pool = H2Pool()
    async with H2Server() as server:
        _, kept = await open_stream(pool, server)
        first = await server.request()
        _, dropped = await open_stream(pool, server)
        await server.request()
        server.goaway(first.conn, last_stream_id=first.stream_id)
        await dropped.until(lambda: dropped.errors)
        assert "GOAWAY" in str(dropped.errors[0])
        assert kept.errors == []
        await open_stream(pool, server)
        assert len(server.connections) == 2
    pool.close()


async def test_lost_connection_fails_every_stream() -> None:
    pool = H2Pool()
    async with H2Server() as server:
        listeners = [(await open_stream(pool, server))[1] for _ in range(2)]
        request = await server.request()
        assert request.conn.transport is not None
        request.conn.transport.close()
        for listener in listeners:
            await listener.until(lambda listener=listener: listener.errors)
            assert isinstance(listener.errors[0], ConnectionLostError)
    pool.close()


async def test_protocol_error_from_the_peer_closes_the_connection() -> None:
    pool = H2Pool()
    async with H2Server() as server:
        _, listener = await open_stream(pool, server)
        request = await server.request()
        assert request.conn.transport is not None
        request.conn.transport.write(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")  # DATA on stream 0
        await listener.until(lambda: listener.errors)
        assert "protocol error" in str(listener.errors[0])
    pool.close()


async def test_sends_beyond_the_window_wait_for_window_updates_in_order() -> None:
    pool = H2Pool()
    async with H2Server(initial_window=100, auto_window=False) as server:
        _, first = await open_stream(pool, server)
        server.respond(await server.request())
        await first.until(lambda: first.status == 200)  # the server's settings have arrived
        stream, _ = await open_stream(pool, server, b"a" * 150)
        request = await server.request()
        await server.until(lambda: len(request.data) == 100)
        stream.send(b"b" * 50)
        stream.end()
        server.window_update(request, 30)
        await server.until(lambda: len(request.data) == 130)
        assert not request.ended
        server.window_update(request, 1000)
        await server.until(lambda: request.ended)
        assert bytes(request.data) == b"a" * 150 + b"b" * 50
    pool.close()


async def test_a_body_of_many_frames_and_windows_arrives_whole() -> None:
    body = bytes(range(256)) * (5 * 4096)  # 5 MiB: hundreds of frames and window updates
    pool = H2Pool()
    async with H2Server() as server:
        stream, _ = await open_stream(pool, server, body[:1000])
        stream.send(memoryview(body)[1000:])
        stream.end()
        request = await server.request()
        await server.until(lambda: request.ended)
        assert bytes(request.data) == body
    pool.close()


async def test_refused_connection_raises_and_leaves_no_pending_connect() -> None:
    pool = H2Pool(connect_timeout=5)
    async with H2Server() as server:
        port = server.port
    with pytest.raises(ConnectionRefusedError):
        await pool.open_stream("127.0.0.1", port, "/", [], Listener())
    assert pool._connecting == {}


async def test_close_says_goodbye() -> None:
    pool = H2Pool()
    async with H2Server() as server:
        await open_stream(pool, server)
        await server.request()
        pool.close()
        await server.until(lambda: server.goaways == 1)
