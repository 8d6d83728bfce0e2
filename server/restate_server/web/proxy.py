"""A byte pipe from an accepted connection to a local upstream server, and the HTTP/2 preface test.

The node port serves HTTP/1.1 (aiohttp) and gRPC on one listener, but grpcio's server cannot adopt
a connection accepted by someone else: a gRPC connection is recognised by its first bytes (the
HTTP/2 client preface, which gRPC sends with prior knowledge) and piped, bytes unchanged, to the
gRPC server listening on a local socket. The pipe keeps backpressure in both directions: when one
side's write buffer fills, reading from the other side pauses until it drains.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import cast

log = logging.getLogger(__name__)

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_PREFACE_MIN = 4  # "PRI " already rules out every HTTP/1 method aiohttp serves

EARLY_LIMIT = 256 * 1024
"""Bytes a client may send before the upstream connection is open; past that its reading pauses."""

Connect = Callable[
    [Callable[[], asyncio.Protocol]], Awaitable[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]]
]
"""Opens the upstream connection with the given protocol factory (e.g. ``loop.create_unix_connection``)."""


def is_h2_preface(first: bytes) -> bool:
    """True if a connection's first bytes are (the start of) the HTTP/2 client preface."""
    if len(first) < _PREFACE_MIN:
        return False
    return first[: len(H2_PREFACE)] == H2_PREFACE[: len(first)]


class Pipe(asyncio.Protocol):
    """The client side of a piped connection; its upstream side is `_Upstream`."""

    __slots__ = ("_client", "_connect", "_early", "_early_bytes", "_eof", "_opening", "_upstream")

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._client: asyncio.Transport | None = None
        self._upstream: asyncio.Transport | None = None
        self._opening: asyncio.Task[None] | None = None
        self._early: list[bytes] = []
        self._early_bytes = 0
        self._eof = False

    # ---- the accepted connection
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._client = cast(asyncio.Transport, transport)
        self._opening = asyncio.get_running_loop().create_task(self._open(), name="node-port-pipe-open")

    def data_received(self, data: bytes) -> None:
        if self._upstream is not None:
            self._upstream.write(data)
            return
        self._early.append(data)
        self._early_bytes += len(data)
        if self._early_bytes > EARLY_LIMIT and self._client is not None:
            self._client.pause_reading()

    def eof_received(self) -> bool:
        if self._upstream is None:
            self._eof = True
        elif self._upstream.can_write_eof():
            self._upstream.write_eof()
        return True  # keep our write side open: answers may still come

    def pause_writing(self) -> None:
        """The client's write buffer filled: stop reading the upstream until it drains."""
        upstream = self._upstream
        if upstream is not None and not upstream.is_closing():
            upstream.pause_reading()

    def resume_writing(self) -> None:
        upstream = self._upstream
        if upstream is not None and not upstream.is_closing():
            upstream.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._client = None
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        if self._upstream is not None:
            self._upstream.close()

    # ---- the upstream connection
    async def _open(self) -> None:
        try:
            transport, _ = await self._connect(lambda: _Upstream(self))
        except OSError as exc:
            log.warning("node port: cannot reach the local gRPC server: %s", exc)
            if self._client is not None:
                self._client.abort()
            return
        upstream = cast(asyncio.Transport, transport)
        client = self._client
        if client is None:  # the client left while we connected
            upstream.close()
            return
        self._upstream = upstream
        upstream.write(b"".join(self._early))
        self._early.clear()
        if self._early_bytes > EARLY_LIMIT:
            client.resume_reading()
        if self._eof and upstream.can_write_eof():
            upstream.write_eof()

    def upstream_data(self, data: bytes) -> None:
        if self._client is not None:
            self._client.write(data)

    def upstream_eof(self) -> None:
        if self._client is not None and self._client.can_write_eof():
            self._client.write_eof()

    def upstream_paused(self, paused: bool) -> None:
        """The upstream's write buffer filled (or drained): stop (or resume) reading the client."""
        client = self._client
        if client is None or client.is_closing():
            return
        if paused:
            client.pause_reading()
        else:
            client.resume_reading()

    def upstream_lost(self) -> None:
        self._upstream = None
        if self._client is not None:
            self._client.close()


class _Upstream(asyncio.Protocol):
    """Hands every upstream event to its `Pipe`."""

    __slots__ = ("_pipe",)

    def __init__(self, pipe: Pipe) -> None:
        self._pipe = pipe

    def data_received(self, data: bytes) -> None:
        self._pipe.upstream_data(data)

    def eof_received(self) -> bool:
        self._pipe.upstream_eof()
        return True

    def pause_writing(self) -> None:
        self._pipe.upstream_paused(True)

    def resume_writing(self) -> None:
        self._pipe.upstream_paused(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._pipe.upstream_lost()
