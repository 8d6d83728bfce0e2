"""The serving layer on real loopback sockets: connection cap, header-read and idle timeouts, shedding."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from ports import free_port
from restate_server.web import serving, shedding

REQUEST = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
DEADLINE = 10.0  # seconds any expected close or answer may take; generous for a loaded machine


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    header_read_timeout: float = 0.2
    idle_connection_timeout: float = 0.5
    max_connections: int = 100


async def _hello(request: web.Request) -> web.Response:
    if request.can_read_body:
        await request.read()
    return web.Response(text="hello")


@contextlib.asynccontextmanager
async def _listening(limits: Limits, app: web.Application | None = None) -> AsyncIterator[int]:
    if app is None:
        app = web.Application()
        app.router.add_route("*", "/hello", _hello)
    port = free_port()
    runner = await serving.serve(app, "test", "127.0.0.1", port, limits)
    try:
        yield port
    finally:
        await runner.cleanup()


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server closes the connection (EOF or reset), reading whatever comes first."""
    try:
        async with asyncio.timeout(DEADLINE):
            while await reader.read(65536):
                pass
    except ConnectionResetError:
        return True
    return True


async def _answer(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(DEADLINE):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1]
        )
        return head + await reader.readexactly(length)


async def test_serving_answers_a_request() -> None:
    async with _listening(Limits()) as port:
        reader, writer = await _connect(port)
        writer.write(REQUEST)
        assert (await _answer(reader)).endswith(b"hello")
        writer.close()


async def test_stalled_request_head_is_closed_after_header_read_timeout() -> None:
    async with _listening(Limits(idle_connection_timeout=3600)) as port:
        reader, writer = await _connect(port)
        writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        await writer.drain()
        assert await _closed_by_server(reader)
        writer.close()


async def test_connection_that_never_sends_is_closed_after_header_read_timeout() -> None:
    async with _listening(Limits(idle_connection_timeout=3600)) as port:
        reader, writer = await _connect(port)
        assert await _closed_by_server(reader)
        writer.close()


@pytest.mark.parametrize(
    "chunks",
    [[REQUEST], [REQUEST[:-3], REQUEST[-3:]], [REQUEST[:-1], REQUEST[-1:]], [REQUEST[:-2], REQUEST[-2:]]],
    ids=["whole", "split-before-crlf-crlf", "split-last-byte", "split-between-crlfs"],
)
async def test_completed_head_disarms_the_header_timer(chunks: list[bytes]) -> None:
    """A head split anywhere is seen complete; a slow body after it is not cut by the head timer."""
    async with _listening(Limits(idle_connection_timeout=3600)) as port:
        reader, writer = await _connect(port)
        post = b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n"
        for chunk in [*chunks, post]:
            writer.write(chunk)
            await writer.drain()
        assert (await _answer(reader)).endswith(b"hello")
        await asyncio.sleep(0.6)  # the scenario: the body arrives three header timeouts later
        writer.write(b"body")
        assert (await _answer(reader)).endswith(b"hello")
        writer.close()


async def test_idle_keep_alive_connection_is_closed_after_idle_timeout() -> None:
    async with _listening(Limits(header_read_timeout=3600, idle_connection_timeout=0.3)) as port:
        reader, writer = await _connect(port)
        writer.write(REQUEST)
        assert (await _answer(reader)).endswith(b"hello")
        assert await _closed_by_server(reader)
        writer.close()


async def test_connections_past_the_cap_are_closed_and_room_comes_back() -> None:
    async with _listening(
        Limits(header_read_timeout=3600, idle_connection_timeout=3600, max_connections=2)
    ) as port:
        held = [await _connect(port) for _ in range(2)]
        for reader, writer in held:  # both are served
            writer.write(REQUEST)
            assert (await _answer(reader)).endswith(b"hello")
        reader, writer = await _connect(port)
        writer.write(REQUEST)
        assert await _closed_by_server(reader)
        assert reader.at_eof()
        writer.close()
        held[0][1].close()
        await held[0][1].wait_closed()

        async def served_again() -> bytes:
            while True:
                r, w = await _connect(port)
                w.write(REQUEST)
                try:
                    return await _answer(r)
                except (asyncio.IncompleteReadError, ConnectionResetError):
                    w.close()
                    await asyncio.sleep(0.05)  # the server has not seen the close yet: poll again
                finally:
                    w.close()

        async with asyncio.timeout(DEADLINE):
            assert (await served_again()).endswith(b"hello")
        held[1][1].close()


async def test_cleanup_closes_connections_that_never_sent_a_byte() -> None:
    port = free_port()
    app = web.Application()
    runner = await serving.serve(app, "test", "127.0.0.1", port, Limits(header_read_timeout=3600))
    reader, writer = await _connect(port)
    (site,) = runner.sites
    assert isinstance(site, serving.GuardedSite)
    async with asyncio.timeout(DEADLINE):
        while not site.guard.open:  # noqa: ASYNC110 (the accept has no event to wait on)
            await asyncio.sleep(0.01)
    await runner.cleanup()
    assert await _closed_by_server(reader)
    writer.close()


async def test_load_shed_answers_past_the_limit_and_recovers() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.Response(text="done")

    overloaded = web.Response(status=429, text="busy")
    app = web.Application(middlewares=shedding.load_shed(1, lambda: overloaded))
    app.router.add_get("/slow", slow)
    app.router.add_get("/hello", _hello)
    async with _listening(Limits(), app) as port:
        first_reader, first_writer = await _connect(port)
        first_writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(entered.wait(), DEADLINE)
        reader, writer = await _connect(port)
        writer.write(REQUEST)
        refused = await _answer(reader)
        assert refused.startswith(b"HTTP/1.1 429")
        assert refused.endswith(b"busy")
        release.set()
        assert (await _answer(first_reader)).endswith(b"done")
        writer.write(REQUEST)
        assert (await _answer(reader)).endswith(b"hello")
        writer.close()
        first_writer.close()


def test_load_shed_without_a_limit_adds_nothing() -> None:
    assert shedding.load_shed(None, lambda: web.Response(status=429)) == []
