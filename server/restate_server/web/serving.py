"""Binds an aiohttp application to a TCP listener behind the connection guard.

aiohttp's own `TCPSite` hands each connection straight to aiohttp's request handler; `GuardedSite`
hands it to a `guard.ConnectionGuard` first, which makes the handler on the connection's first bytes:
HTTP/2 with prior knowledge (`h2c`) for a connection that opens with the h2 preface, aiohttp's
HTTP/1.1 handler otherwise. Responses carry no `Server` header, as upstream's do not.
The idle (keep-alive) timeout is aiohttp's `keepalive_timeout`: it closes a connection that has not
delivered a complete request head that long after accepting it or answering its last request.
A listener may also take some connections away from aiohttp: `sniff` sees each connection's first
bytes and returns the protocol that serves it instead (the node port pipes gRPC connections this
way), or None to leave it to aiohttp. Shutdown goes through the runner as usual (`AppRunner.cleanup()` stops the site, then aiohttp closes
the connections it serves); the site also closes the guarded connections that never sent a byte.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from restate_server.web import guard, h2c

BACKLOG = 1024  # pending connections the kernel queues before accept; matches the old TCPSite call

Sniff = Callable[[bytes], asyncio.Protocol | None]
"""Given a connection's first bytes, the protocol that serves it instead of aiohttp, or None."""


class ListenerLimits(guard.Limits, Protocol):
    """A listener's limits (`restate_server.config.ConnectionLimits` has these)."""

    @property
    def idle_connection_timeout(self) -> float: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DefaultLimits:
    """For listeners without configuration keys of their own (the node port)."""

    header_read_timeout: float = 30.0
    idle_connection_timeout: float = 75.0
    max_connections: int = 1024


DEFAULT_LIMITS = DefaultLimits()


class GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a `guard.ConnectionGuard`."""

    __slots__ = ("_guard", "_h2c", "_host", "_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        limits: ListenerLimits,
        name: str,
        sniff: Sniff | None = None,
    ) -> None:
        super().__init__(runner, backlog=BACKLOG)
        server = runner.server
        assert server is not None, "runner.setup() first"
        self._host = host
        self._port = port
        self._h2c: set[h2c.H2CConnection] = set()

        def h2c_connection() -> h2c.H2CConnection:
            connection = h2c.H2CConnection(server, limits.idle_connection_timeout, self._h2c.discard)
            self._h2c.add(connection)
            return connection

        def serve(first: bytes) -> asyncio.Protocol | None:
            # a sniffer (the node port's gRPC) sees the bytes first; then h2c or HTTP/1.1 to the app
            other = None if sniff is None else sniff(first)
            return other if other is not None else h2c.select(first, server, h2c_connection)

        self._guard = guard.ConnectionGuard(name=name, limits=limits, serve=serve)

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def guard(self) -> guard.ConnectionGuard:
        return self._guard

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._guard, self._host, self._port, backlog=self._backlog, reuse_address=True
        )

    async def stop(self) -> None:
        await super().stop()
        self._guard.close_unserved()
        for connection in list(self._h2c):  # aiohttp's shutdown only knows its HTTP/1.1 connections
            connection.close()


async def _without_server_header(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers.popall("server", None)


async def serve(
    app: web.Application,
    name: str,
    host: str,
    port: int,
    limits: ListenerLimits,
    sniff: Sniff | None = None,
) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` until the returned runner's ``cleanup()``; OSError if it cannot bind.

    ``sniff`` may take connections away from ``app`` by their first bytes (see `Sniff`).
    """
    app.on_response_prepare.append(_without_server_header)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, keepalive_timeout=limits.idle_connection_timeout
    )
    await runner.setup()
    site = GuardedSite(runner, host, port, limits, name, sniff)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    return runner
