"""Doubles for the invoker's seams: a virtual clock, transports that replay bytes, a partition host.

The test plays the deployment: `FakePool.opened` / `FakeHttp1.opened` hand it each stream the attempt
opens, with the request (path, headers, replayed body); it answers with `reply`/`feed`/`finish`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from restate_server.ids import InvocationId
from restate_server.invoker.attempt import Snapshot
from restate_server.invoker.service import Invoker
from restate_server.log.records import InvokerEffect, terminal_to_wire
from restate_server.protocol import codec, protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.schema.model import Deployment, Handler, HandlerType, ProtocolType, Service, ServiceType
from restate_server.schema.options import InvocationOptions, ResolvedRetryPolicy
from restate_server.storage.journal import JournalEntry

CONTENT_TYPE = "application/vnd.restate.invocation.v{}"
END = codec.encode_message(pb.EndMessage())


class FakeTimer:
    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Virtual time: `advance` runs the timers that fall due, in deadline order."""

    def __init__(self, monotonic: float = 1_000.0, wall: float = 1_700_000_000.0) -> None:
        self.now = monotonic
        self._wall_offset = wall - monotonic
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now + self._wall_offset

    def call_later(self, delay: float, callback: Callable[[], object]) -> FakeTimer:
        timer = FakeTimer(self.now + delay, callback)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    @property
    def pending(self) -> list[float]:
        """Delays from now of the timers still armed."""
        return sorted(t.when - self.now for _, _, t in self._timers if not t.cancelled)

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            if not timer.cancelled:
                timer.callback()
        self.now = target


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


class FakeStream:
    """The deployment's side of one exchange; the attempt sees a `streams.BidiStream`."""

    def __init__(self, listener: Any, request: Request) -> None:
        self.listener = listener
        self.request = request
        self.sent: list[bytes] = []
        self.ended = False
        self.closed = False
        self.was_reset = False
        self.finished = asyncio.get_running_loop().create_future()

    # attempt side
    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def end(self) -> None:
        self.ended = True

    def reset(self) -> None:
        self.closed = self.was_reset = True
        if not self.finished.done():
            self.finished.set_result(None)

    async def run(self) -> None:  # HTTP/1.1: the exchange lasts until the deployment finished
        await self.finished

    # deployment side
    def reply(self, *chunks: bytes, status: int = 200, version: int = 6, **headers: str) -> None:
        self.listener.on_headers(status, {"content-type": CONTENT_TYPE.format(version), **headers})
        self.feed(*chunks)

    def feed(self, *chunks: bytes) -> None:
        for chunk in chunks:
            if self.closed:
                return
            self.listener.on_data(chunk)

    def finish(self) -> None:
        if not self.closed:
            self.closed = True
            self.listener.on_end()
        if not self.finished.done():
            self.finished.set_result(None)

    def fail(self, error: Exception) -> None:
        if not self.closed:
            self.closed = True
            self.listener.on_error(error)
        if not self.finished.done():
            self.finished.set_result(None)


class FakePool:
    """Stands in for `H2Pool`: every open_stream becomes a `FakeStream` on `opened`."""

    def __init__(self) -> None:
        self.opened: asyncio.Queue[FakeStream] = asyncio.Queue()
        self.refuse: Exception | None = None

    async def open_stream(
        self, host: str, port: int, path: str, headers: Any, listener: Any, body: bytes = b""
    ) -> FakeStream:
        if self.refuse is not None:
            raise self.refuse
        stream = FakeStream(listener, Request(path, dict(headers), body))
        self.opened.put_nowait(stream)
        return stream

    def close(self) -> None:
        pass


class FakeHttp1:
    """Stands in for `Http1Client`."""

    def __init__(self) -> None:
        self.opened: asyncio.Queue[FakeStream] = asyncio.Queue()
        self.closed = False

    def exchange(self, url: str, headers: Any, body: bytes, listener: Any, timeout: float) -> FakeStream:
        stream = FakeStream(listener, Request(url, dict(headers), body))
        self.opened.put_nowait(stream)
        return stream

    async def close(self) -> None:
        self.closed = True


class FakeTransport:
    def __init__(self, signer: Any = None, additional_headers: dict[str, str] | None = None) -> None:
        self.h2 = FakePool()
        self.http1 = FakeHttp1()
        self.signer = signer
        self.additional_headers = additional_headers or {}

    async def close(self) -> None:
        await self.http1.close()


INVOCATION_ID = InvocationId.for_workflow("Obj", "k").to_bytes()


def policy(**overrides: Any) -> ResolvedRetryPolicy:
    values: dict[str, Any] = {
        "initial_interval": 0.5,
        "exponentiation_factor": 2.0,
        "max_attempts": 5,
        "max_interval": 10.0,
        "on_max_attempts": "pause",
        **overrides,
    }
    return ResolvedRetryPolicy(**values)


def deployment(
    *,
    service_ty: ServiceType = ServiceType.VIRTUAL_OBJECT,
    handler_ty: HandlerType | None = HandlerType.EXCLUSIVE,
    protocol_type: ProtocolType = ProtocolType.BIDI_STREAM,
    use_http_11: bool = False,
    uri: str = "http://127.0.0.1:9080/base",
    headers: dict[str, str] | None = None,
) -> Deployment:
    handler = Handler(name="run", ty=handler_ty)
    service = Service(name="Obj", ty=service_ty, handlers={"run": handler}, deployment_id="dp_1")
    return Deployment(
        id="dp_1",
        uri=uri,
        protocol_type=protocol_type,
        use_http_11=use_http_11,
        additional_headers=headers or {},
        created_at=0,
        min_protocol_version=5,
        max_protocol_version=7,
        sdk_version=None,
        services={"Obj": service},
    )


INPUT = JournalEntry(
    type=T.INPUT_COMMAND,
    flags=0,
    payload=pb.InputCommandMessage(value=pb.Value(content=b'"x"')).SerializeToString(),
)


def snapshot(
    *,
    version: int = 6,
    journal: list[JournalEntry] | None = None,
    inactivity: float = 60.0,
    abort: float = 60.0,
    retry: ResolvedRetryPolicy | None = None,
    pinned: bool = False,
    invocation_id: bytes = INVOCATION_ID,
    **deployment_args: Any,
) -> Snapshot:
    entries = journal if journal is not None else [INPUT]
    return Snapshot(
        partition=0,
        invocation_id=invocation_id,
        service="Obj",
        handler="run",
        key="k",
        keyed=True,
        journal=entries,
        commands=len(entries),
        state=[(b"a", b"1")],
        deployment=deployment(**deployment_args),
        protocol_version=version,
        pinned=pinned,
        options=InvocationOptions(
            inactivity_timeout=inactivity,
            abort_timeout=abort,
            retry=retry or policy(),
            journal_retention=0,
            idempotency_retention=0,
            workflow_completion_retention=0,
            enable_lazy_state=False,
        ),
        idempotency_key=None,
    )


def frame(msg: Any, *, ack: bool = False) -> bytes:
    return codec.encode_message(msg, requested_ack=ack)


@dataclass
class FakeHost:
    """The partition side: snapshots of running invocations; terminal effects stop them."""

    running: dict[bytes, Callable[[], Snapshot]] = field(default_factory=dict)
    proposals: list[InvokerEffect] = field(default_factory=list)
    snapshots_taken: int = 0
    proposed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, invocation_id: bytes = INVOCATION_ID, **snap_args: Any) -> None:
        self.running[invocation_id] = lambda: snapshot(invocation_id=invocation_id, **snap_args)

    def snapshot(self, partition: int, invocation_id: bytes) -> Snapshot | None:
        make = self.running.get(invocation_id)
        self.snapshots_taken += 1
        return make() if make is not None else None

    def propose(self, partition: int, effect: InvokerEffect) -> asyncio.Future[int]:
        self.proposals.append(effect)
        if effect.terminal is not None:
            self.running.pop(effect.invocation_id, None)
        self.proposed.set()
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.set_result(len(self.proposals))
        return done

    async def wait_applied(self, partition: int, lsn: int) -> None:
        return None

    def terminals(self) -> list[list[Any]]:
        """The proposed terminals in their wire form (`["end"]`, `["kill", code, message]`, …)."""
        return [terminal_to_wire(p.terminal) for p in self.proposals if p.terminal is not None]


async def eventually(check: Callable[[], Any]) -> Any:
    """Yield to the loop until `check()` is truthy (a deadline, not a sleep that decides)."""
    async with asyncio.timeout(5):
        while not (value := check()):  # noqa: ASYNC110 - the state polled has no event of its own
            await asyncio.sleep(0)
    return value


def new_invoker(host: FakeHost, clock: FakeClock, **kwargs: Any) -> tuple[Invoker, FakeTransport]:
    transport = FakeTransport()
    invoker = Invoker(host, transport, clock=clock, **kwargs)  # type: ignore[arg-type]
    return invoker, transport
