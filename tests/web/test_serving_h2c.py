"""HTTP/2 with prior knowledge on the serving layer, beside HTTP/1.1 on the same port, on real sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.events
import httpx
import pytest
from aiohttp import web
from ports import free_port
from restate_server.web import h2c, request_target, serving

DEADLINE = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    header_read_timeout: float = 5.0
    idle_connection_timeout: float = 5.0
    max_connections: int = 100


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.Response(text=f"{request.method} {request.raw_path} {len(body)} {request.headers.get('host')}")


async def _stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(4):
        await response.write(b"x" * 100_000)  # past the default 64 KiB stream window
    await response.write_eof()
    return response


@contextlib.asynccontextmanager
async def _listening(limits: Limits, app: web.Application | None = None) -> AsyncIterator[int]:
    if app is None:
        app = web.Application(client_max_size=2**22)
        app.router.add_route("*", "/echo", _echo)
        app.router.add_route("*", "/{key}/echo", _echo)
        app.router.add_get("/stream", _stream)
    port = free_port()
    runner = await serving.serve(app, "test", "127.0.0.1", port, limits)
    try:
        yield port
    finally:
        await runner.cleanup()


async def test_h2c_and_http1_are_served_on_one_port() -> None:
    async with _listening(Limits()) as port:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(http2=True, http1=False) as client:
            posted = await client.post(f"{url}/echo?q=1", content=b"a" * 300_000)
            assert posted.http_version == "HTTP/2"
            assert posted.text == f"POST /echo?q=1 300000 127.0.0.1:{port}"
            assert "server" not in posted.headers
            streamed = await client.get(f"{url}/stream")
            assert streamed.http_version == "HTTP/2"
            assert len(streamed.content) == 400_000
            missing = await client.get(f"{url}/nope")
            assert missing.status_code == 404
            many = await asyncio.gather(*(client.post(f"{url}/echo", content=b"b" * 10) for _ in range(40)))
            assert {r.text for r in many} == {f"POST /echo 10 127.0.0.1:{port}"}
        async with httpx.AsyncClient() as client:
            plain = await client.get(f"{url}/echo")
            assert plain.http_version == "HTTP/1.1"
            assert plain.text == f"GET /echo 0 127.0.0.1:{port}"
            assert "server" not in plain.headers


class _RawH2:
    """An h2 client over a plain socket, for what httpx does not do (split prefaces, resets)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))

    def preface(self) -> bytes:
        self.conn.initiate_connection()
        return self.conn.data_to_send()

    async def events(self) -> list[h2.events.Event]:
        data = await asyncio.wait_for(self.reader.read(65536), DEADLINE)
        if not data:
            return [h2.events.ConnectionTerminated()]
        events = self.conn.receive_data(data)
        self.writer.write(self.conn.data_to_send())
        return events

    async def response(self, stream_id: int) -> tuple[dict[bytes, bytes], bytes]:
        headers: dict[bytes, bytes] = {}
        body = b""
        while True:
            for event in await self.events():
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                    headers = dict(event.headers or [])
                elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                    body += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                    return headers, body


async def test_preface_split_across_reads_is_still_h2() -> None:
    async with _listening(Limits()) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = _RawH2(reader, writer)
        preface = client.preface()
        for piece in (preface[:3], preface[3:20], preface[20:]):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.05)  # the scenario: the preface arrives in three reads
        client.conn.send_headers(
            1,
            [
                (":method", "GET"),
                (":path", "/caf\xe9/echo".encode()),
                (":scheme", "http"),
                (":authority", "h"),
            ],
            end_stream=True,
        )
        writer.write(client.conn.data_to_send())
        headers, body = await client.response(1)
        assert headers[b":status"] == b"200"
        assert body == b"GET /caf%C3%A9/echo 0 h"  # raw UTF-8 in :path arrives percent-encoded
        writer.close()


async def test_raw_utf8_in_an_http1_request_line_is_percent_encoded() -> None:
    async with _listening(Limits()) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write("GET /caf\xe9/echo HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".encode())
        answer = await asyncio.wait_for(reader.read(), DEADLINE)
        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.endswith(b"GET /caf%C3%A9/echo 0 h")
        writer.close()


async def test_idle_h2c_connection_is_closed() -> None:
    async with _listening(Limits(idle_connection_timeout=0.3)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = _RawH2(reader, writer)
        writer.write(client.preface())
        seen: list[h2.events.Event] = []
        async with asyncio.timeout(DEADLINE):
            while not any(isinstance(e, h2.events.ConnectionTerminated) for e in seen):
                seen += await client.events()
        writer.close()


async def test_a_reset_stream_cancels_its_handler() -> None:
    entered, cancelled = asyncio.Event(), asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.Response()

    app = web.Application()
    app.router.add_get("/hang", hang)
    async with _listening(Limits(), app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = _RawH2(reader, writer)
        writer.write(client.preface())
        client.conn.send_headers(
            1,
            [(":method", "GET"), (":path", "/hang"), (":scheme", "http"), (":authority", "h")],
            end_stream=True,
        )
        writer.write(client.conn.data_to_send())
        await asyncio.wait_for(entered.wait(), DEADLINE)
        client.conn.reset_stream(1)
        writer.write(client.conn.data_to_send())
        await asyncio.wait_for(cancelled.wait(), DEADLINE)
        writer.close()


async def test_cleanup_closes_open_h2c_connections() -> None:
    port = free_port()
    runner = await serving.serve(
        web.Application(), "test", "127.0.0.1", port, Limits(idle_connection_timeout=3600)
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = _RawH2(reader, writer)
    writer.write(client.preface())
    await client.events()  # the server's settings: the connection is served
    await runner.cleanup()
    with contextlib.suppress(ConnectionResetError):  # a reset is a close too
        async with asyncio.timeout(DEADLINE):
            while await reader.read(65536):
                pass
    writer.close()


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (h2c.PREFACE + b"\x00\x00", "h2"),
        (h2c.PREFACE[:5], None),
        (b"GET / HTTP/1.1\r\n", "http1"),
        (b"PRX", "http1"),
    ],
    ids=["preface", "partial-preface", "http1", "not-quite-preface"],
)
def test_select_waits_for_the_whole_preface(first: bytes, expected: str | None) -> None:
    chosen = h2c.select(first, lambda: _Named("http1"), lambda: _Named("h2"))
    assert (chosen.name if isinstance(chosen, _Named) else None) == expected


class _Named(asyncio.Protocol):
    def __init__(self, name: str) -> None:
        self.name = name


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"GET /a HTTP/1.1\r\nX: \xc3\xa9\r\n", (b"GET /a HTTP/1.1\r\nX: \xc3\xa9\r\n", True)),
        ("GET /é HTTP/1.1\r\nX: é\r\n".encode(), ("GET /%C3%A9 HTTP/1.1\r\nX: é\r\n".encode(), True)),
        ("GET /é".encode(), (b"GET /%C3%A9", False)),
    ],
    ids=["ascii", "utf8-target-only", "unfinished-line"],
)
def test_only_the_request_line_is_escaped(data: bytes, expected: tuple[bytes, bool]) -> None:
    assert request_target.escape_request_line(data) == expected
