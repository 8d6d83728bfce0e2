"""Connection guard: the asyncio protocol in front of every HTTP connection a listener accepts.

aiohttp has no header-read timeout: a client that sends half a request head and stalls (slowloris)
holds its connection, its buffers and an aiohttp handler until the keep-alive timer, and nothing caps
how many such connections a listener keeps. The guard adds both without a parser of its own, so
aiohttp's C parser still does all the HTTP work:

- **cap**: a connection accepted while the listener already has `max_connections` open is closed at
  once, before any handler exists for it;
- **header-read timeout**: from accept until the first request head is complete (an empty line seen
  in the bytes) a timer runs; if it fires, the connection is closed. Later heads on a keep-alive
  connection are bounded by aiohttp's keep-alive timer, which the serving module sets to the idle
  timeout: aiohttp closes a connection that has not delivered a complete head that long after its
  last answer.

The protocol that serves the connection is made on its first bytes (`Serve`), not on accept: an idle
or refused connection never costs a handler, and this is the one place where a protocol sniffer (h2c
prior knowledge: the 24-byte `PRI * HTTP/2.0` preface) can pick another protocol. A `Serve` that
cannot tell yet (a first chunk shorter than the preface it looks for) returns None, and the guard
keeps the bytes until more arrive.

Until the first request line is complete, bytes above 0x7F in it are percent-encoded
(`request_target`): upstream accepts raw UTF-8 in a request target, aiohttp's parser does not. Once
the first head is complete the hot path is two attribute tests and a call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

from restate_server.web import request_target

log = logging.getLogger(__name__)

Serve = Callable[[bytes], asyncio.Protocol | None]
"""Given the first bytes of a connection, the protocol that serves it (not yet connected); None: more
bytes are needed to decide."""

# An empty line ends a request head: CRLF CRLF, or bare LF LF (which lenient parsers accept). Both
# contain one of these; a chunk is searched with the last bytes of the previous one in front.
_HEAD_ENDS = (b"\n\r\n", b"\n\n")
_CARRY = 2  # bytes kept from the previous chunk: one less than the longest end marker


class Limits(Protocol):
    """What the guard enforces (`restate_server.config.ConnectionLimits` has these)."""

    @property
    def header_read_timeout(self) -> float: ...
    @property
    def max_connections(self) -> int: ...


@dataclass(slots=True)
class GuardStats:
    """Counters of one listener, for logs and tests."""

    refused: int = 0
    """Connections closed at accept because the listener was full."""
    head_timeouts: int = 0
    """Connections closed because their first request head did not complete in time."""


@dataclass(slots=True, eq=False)
class ConnectionGuard:
    """One listener's guard: the protocol factory given to ``loop.create_server``."""

    name: str
    limits: Limits
    serve: Serve
    open: set[GuardedConnection] = field(default_factory=set)
    stats: GuardStats = field(default_factory=GuardStats)

    def __call__(self) -> GuardedConnection:
        return GuardedConnection(self)

    def close_unserved(self) -> None:
        """Close the connections that never sent a byte (aiohttp does not know them) at shutdown."""
        for connection in list(self.open):
            connection.close_if_unserved()


class GuardedConnection(asyncio.Protocol):
    """One accepted connection: enforces the limits, then hands every event to the serving protocol."""

    __slots__ = ("_carry", "_guard", "_inner", "_pending", "_request_line", "_timer", "_transport")

    def __init__(self, guard: ConnectionGuard) -> None:
        self._guard = guard
        self._transport: asyncio.Transport | None = None
        self._inner: asyncio.Protocol | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._carry = b""
        self._pending = b""  # first bytes kept while `serve` cannot decide
        self._request_line = True  # the first request line has not ended yet

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        stream = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        if len(guard.open) >= guard.limits.max_connections:
            guard.stats.refused += 1
            if guard.stats.refused == 1 or guard.stats.refused % 1000 == 0:
                log.warning(
                    "%s listener is at its limit of %d connections; closed %d new ones so far",
                    guard.name,
                    guard.limits.max_connections,
                    guard.stats.refused,
                )
            stream.abort()
            return
        guard.open.add(self)
        self._transport = stream
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(guard.limits.header_read_timeout, self._head_timed_out)

    def data_received(self, data: bytes) -> None:
        if self._request_line:
            data, ended = request_target.escape_request_line(data)
            self._request_line = not ended
        if self._timer is not None:  # still reading the first request head
            self._watch_head(data)
        inner = self._inner
        if inner is None:
            if self._transport is None:
                return  # refused or already closed
            data = self._pending + data
            inner = self._guard.serve(data)
            if inner is None:
                self._pending = data
                return
            self._pending = b""
            self._inner = inner
            inner.connection_made(self._transport)
        inner.data_received(data)

    def _watch_head(self, data: bytes) -> None:
        window = self._carry + data
        if any(end in window for end in _HEAD_ENDS):
            self._disarm()
        else:
            self._carry = window[-_CARRY:]

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._carry = b""

    def _head_timed_out(self) -> None:
        self._timer = None
        self._guard.stats.head_timeouts += 1
        log.debug("%s: closing a connection whose request head did not complete in time", self._guard.name)
        if self._transport is not None:
            self._transport.close()

    def close_if_unserved(self) -> None:
        if self._inner is None and self._transport is not None:
            self._transport.close()

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._guard.open.discard(self)
        self._transport = None
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.connection_lost(exc)
