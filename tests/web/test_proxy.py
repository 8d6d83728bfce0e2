"""The node port's byte pipe: the HTTP/2 preface test, and bytes both ways through a real upstream."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest
from restate_server.web import proxy

DEADLINE = 10.0


@pytest.mark.parametrize(
    ("first", "h2"),
    [
        (proxy.H2_PREFACE, True),
        (proxy.H2_PREFACE + b"\x00\x00\x12\x04", True),  # the preface and the SETTINGS frame in one read
        (proxy.H2_PREFACE[:9], True),  # a client that sent only part of it so far
        (b"PRI", False),  # too short to tell
        (b"GET /metrics HTTP/1.1\r\n\r\n", False),
        (b"PRI * HTTP/1.1\r\n\r\n", False),
    ],
    ids=["preface", "preface-and-frame", "partial-preface", "three-bytes", "http1", "pri-http1"],
)
def test_h2_preface_is_recognised_from_the_first_bytes(first: bytes, h2: bool) -> None:
    assert proxy.is_h2_preface(first) is h2


async def _upstream_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], object],
) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    return server, server.sockets[0].getsockname()[1]


async def _piped_listener(port: int) -> tuple[asyncio.Server, int]:
    """A listener whose every connection is a Pipe to 127.0.0.1:`port`."""
    loop = asyncio.get_running_loop()

    def connect(factory: Callable[[], asyncio.Protocol]):  # type: ignore[no-untyped-def]
        return loop.create_connection(factory, "127.0.0.1", port)

    server = await loop.create_server(lambda: proxy.Pipe(connect), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_bytes_flow_both_ways_and_eof_reaches_the_upstream() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # until the client's EOF came through the pipe
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    upstream, upstream_port = await _upstream_server(echo)
    listener, port = await _piped_listener(upstream_port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        payload = b"x" * 3_000_000  # more than any socket buffer: the pipe must pause and resume
        writer.write(b"hello " + payload)
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), DEADLINE)
        assert answer == b"HELLO " + payload.upper()
        writer.close()
    finally:
        listener.close()
        upstream.close()


async def test_an_unreachable_upstream_closes_the_client() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]  # bound, never listening: connections are refused
        listener, port = await _piped_listener(dead_port)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(proxy.H2_PREFACE)
            assert await asyncio.wait_for(reader.read(), DEADLINE) == b""
            writer.close()
        finally:
            listener.close()
