"""The load generator: a minimal keep-alive HTTP/1.1 client on asyncio, and a bounded closed loop.

Why not aiohttp or httpx: on a 2-core machine the generator competes with the server and the SDK
process for CPU, so it must cost as little as possible per request while still reading and checking
every response. This client writes one pre-rendered request and parses one response (status line,
``content-length`` or chunked body) per round trip; nothing else. Its own CPU time is measured by the
runner and reported next to the servers' so a reader can see it was not the bottleneck.

A run is a closed loop: ``concurrency`` workers, each with its own connection, issue operations until
either ``max_ops`` operations have started or ``duration_s`` has passed. Each operation is an async
callable that raises ``CheckError`` when a response is wrong. Nothing here knows about Restate.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Awaitable, Callable


class CheckError(Exception):
    """A response arrived but was not the one expected."""


class HttpStatusError(CheckError):
    """The response had an unexpected HTTP status."""

    def __init__(self, status: int, body: bytes, what: str) -> None:
        super().__init__(f"{what}: HTTP {status} {body[:200]!r}")
        self.status = status
        self.body = body


@dataclasses.dataclass(slots=True, kw_only=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Client:
    """One keep-alive HTTP/1.1 connection to ``host:port``, reopened when the server closes it."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None

    async def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        """Send one request and read its full response, within the client's timeout."""
        return await asyncio.wait_for(self._request(method, path, body, headers), self.timeout_s)

    async def _request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str] | None
    ) -> Response:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        head = f"{method} {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
        if body is not None:
            if not any(name.lower() == "content-type" for name in headers or {}):
                head += "content-type: application/json\r\n"
            head += f"content-length: {len(body)}\r\n"
        elif method != "GET":
            head += "content-length: 0\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        self._writer.write((head + "\r\n").encode() + (body or b""))
        try:
            return await self._read_response(self._reader)
        except BaseException:
            # A half-read response leaves the connection unusable.
            await self.close()
            raise

    async def _read_response(self, reader: asyncio.StreamReader) -> Response:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _read_chunked(reader)
        else:
            body = b""
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status=status, headers=headers, body=body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            # Trailers (none expected), then the final empty line.
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


Operation = Callable[[Client, int], Awaitable[None]]


@dataclasses.dataclass(kw_only=True)
class RunResult:
    """What one bounded closed-loop run measured."""

    ops: int = 0
    errors: int = 0
    error_samples: list[str] = dataclasses.field(default_factory=list)
    latencies_s: list[float] = dataclasses.field(default_factory=list)
    wall_s: float = 0.0
    gen_cpu_s: float = 0.0

    def percentile(self, q: float) -> float | None:
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def throughput(self) -> float:
        return self.ops / self.wall_s if self.wall_s > 0 else 0.0


async def run_closed_loop(
    *,
    op: Operation,
    make_client: Callable[[], Client],
    concurrency: int,
    duration_s: float,
    max_ops: int,
    on_tick: Callable[[], None] | None = None,
) -> RunResult:
    """Run ``op`` from ``concurrency`` workers until ``max_ops`` started or ``duration_s`` passed.

    Operations already in flight at the deadline are allowed to finish (each is bounded by the
    client's own timeout); only completed operations count.
    """
    result = RunResult()
    counter = itertools.count()
    start = time.perf_counter()
    deadline = start + duration_s
    cpu0 = time.process_time()

    async def worker() -> None:
        client = make_client()
        try:
            while time.perf_counter() < deadline:
                index = next(counter)
                if index >= max_ops:
                    return
                t0 = time.perf_counter()
                try:
                    await op(client, index)
                except (TimeoutError, CheckError, OSError, asyncio.IncompleteReadError, ValueError) as e:
                    result.errors += 1
                    if len(result.error_samples) < 5:
                        result.error_samples.append(f"{type(e).__name__}: {e}")
                    continue
                result.latencies_s.append(time.perf_counter() - t0)
                result.ops += 1
        finally:
            await client.close()

    async def ticker() -> None:
        while on_tick is not None:
            on_tick()
            await asyncio.sleep(0.2)

    tick_task = asyncio.create_task(ticker(), name="bench-sampler")
    try:
        await asyncio.gather(
            *(asyncio.create_task(worker(), name=f"bench-worker-{n}") for n in range(concurrency))
        )
    finally:
        tick_task.cancel()
    result.wall_s = time.perf_counter() - start
    result.gen_cpu_s = time.process_time() - cpu0
    return result


async def keep_calling(port: int, path: str, tag: str, stop: asyncio.Event) -> None:
    """POST to ``path`` one call after another until ``stop`` is set, through server restarts: a
    failed call opens a new connection and tries again shortly (for the restarts under load)."""
    client = Client("127.0.0.1", port, 5.0)
    i = 0
    while not stop.is_set():
        i += 1
        try:
            await client.request("POST", path, f'"{tag}-{i}"'.encode())
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            await client.close()
            client = Client("127.0.0.1", port, 5.0)
            await asyncio.sleep(0.05)
    await client.close()
