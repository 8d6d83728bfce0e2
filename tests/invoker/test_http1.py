"""HTTP/1.1 attempts against real aiohttp servers on loopback: streaming, reset, and no redirects."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from invoker_fakes import END, snapshot
from restate_server.invoker.attempt import Attempt, Transport
from restate_server.invoker.errors import AttemptError
from restate_server.invoker.http1 import Http1Client
from restate_server.protocol.messages import MessageType as T

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Site:
    port: int
    requests: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Site]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> Site:
        site = Site(0)

        async def recording(request: web.Request) -> web.StreamResponse:
            site.requests.append((request.path_qs, await request.read(), dict(request.headers)))
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", recording)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        tcp = web.TCPSite(runner, "127.0.0.1", 0)
        await tcp.start()
        runners.append(runner)
        site.port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return site

    yield start
    for runner in runners:
        await runner.cleanup()


@dataclass
class Listener:
    status: int | None = None
    chunks: list[bytes] = field(default_factory=list)
    ended: bool = False
    errors: list[Exception] = field(default_factory=list)
    reset_after: int | None = None
    exchange: object = None

    def on_headers(self, status: int, headers: dict[str, str]) -> None:
        self.status = status

    def on_data(self, data: bytes) -> None:
        self.chunks.append(data)
        if self.reset_after is not None and sum(map(len, self.chunks)) >= self.reset_after:
            self.exchange.reset()  # type: ignore[attr-defined]

    def on_end(self) -> None:
        self.ended = True

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)


async def test_response_streams_to_the_listener(serve: Callable[[Handler], Awaitable[Site]]) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "x/y"})
        await response.prepare(request)
        for part in (b"one", b"two"):
            await response.write(part)
        return response

    site = await serve(answer)
    client, listener = Http1Client(), Listener()
    exchange = client.exchange(f"{site.url}/invoke/S/h?q=1", [("x-a", "1")], b"body", listener, 5)
    await exchange.run()
    assert (listener.status, b"".join(listener.chunks), listener.ended) == (200, b"onetwo", True)
    assert site.requests[0][:2] == ("/invoke/S/h?q=1", b"body")
    assert site.requests[0][2]["x-a"] == "1"
    await client.exchange(site.url, [], b"", Listener(), 5).run()  # the session is reused
    await client.close()


async def test_reset_stops_reading_an_endless_body(serve: Callable[[Handler], Awaitable[Site]]) -> None:
    written = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal written
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            for _ in range(10_000):  # bounded: ~640 MB if nobody stops reading
                await response.write(b"\0" * 65536)
                written += 65536
        except ConnectionError:
            pass
        return response

    site = await serve(endless)
    client, listener = Http1Client(), Listener(reset_after=1)
    exchange = client.exchange(site.url, [], b"", listener, 30)
    listener.exchange = exchange
    await exchange.run()
    assert exchange.closed
    assert not listener.ended
    assert listener.errors == []
    assert sum(map(len, listener.chunks)) < 10 * 2**20
    await client.close()


async def test_transport_failures_reach_the_listener(serve: Callable[[Handler], Awaitable[Site]]) -> None:
    release = asyncio.Event()

    async def stuck(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response()

    site = await serve(stuck)
    client = Http1Client()
    timed_out = Listener()
    await client.exchange(site.url, [], b"", timed_out, 0.2).run()
    release.set()
    assert isinstance(timed_out.errors[0], TimeoutError)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    refused = Listener()
    await client.exchange(f"http://127.0.0.1:{port}", [], b"", refused, 5).run()
    assert isinstance(refused.errors[0], OSError)
    await client.close()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_attempt_never_follows_a_redirect(
    serve: Callable[[Handler], Awaitable[Site]], status: int
) -> None:
    async def elsewhere(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=struct.pack(">HHI", T.END, 0, 0), content_type="application/vnd.restate.invocation.v6"
        )

    target = await serve(elsewhere)

    async def redirect(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"location": f"{target.url}/invoke/Obj/run"})

    origin = await serve(redirect)
    transport = Transport(signer=None, additional_headers={"x-secret": "s"})
    attempt = Attempt(snapshot(uri=origin.url, use_http_11=True), transport, lambda effect: None)
    with pytest.raises(AttemptError) as caught:
        await attempt.run()
    assert (caught.value.code, caught.value.message) == (
        "RT0006",
        f"unexpected status code {status} from the deployment",
    )
    assert len(origin.requests) == 1
    assert target.requests == []
    await transport.close()


async def test_attempt_over_http1_end_to_end(serve: Callable[[Handler], Awaitable[Site]]) -> None:
    async def sdk(request: web.Request) -> web.StreamResponse:
        return web.Response(body=END, content_type="application/vnd.restate.invocation.v6")

    site = await serve(sdk)
    transport = Transport(signer=None, additional_headers={})
    effects: list[object] = []
    attempt = Attempt(snapshot(uri=site.url, use_http_11=True), transport, effects.append)
    assert (await attempt.run()).kind == "end"
    assert len(effects) == 1
    await transport.close()
