"""One invocation attempt: open a stream to the deployment, replay the journal, collect effects.

The attempt turns what the SDK sends into `InvokerEffect` records (proposed in order, without
waiting for each to be durable) and ends with one of: the SDK's End, a Suspension, or an error
(`AttemptError`). Bidi streams (h2c) stay open for notifications pushed by the leader; request/
response attempts (HTTP/1.1) send everything up front and read the whole answer.

Nothing the deployment sends is trusted: frames are size-checked from their header, then parsed and
checked one by one (`validation`) before any is proposed. A bad frame fails the attempt; the valid
frames before it are still proposed, as they would have been had they arrived in an earlier read
(upstream forwards each message as it is decoded), so what gets journaled does not depend on how
the bytes were split into reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import assert_never
from urllib.parse import quote, urlsplit

from restate_server.ids import InvocationId
from restate_server.invoker import validation
from restate_server.invoker.clock import Clock, LoopClock, Timer
from restate_server.invoker.errors import AttemptError
from restate_server.invoker.h2c import H2Pool
from restate_server.invoker.http1 import Http1Client
from restate_server.invoker.signing import RequestSigner
from restate_server.invoker.streams import BidiStream, Stream
from restate_server.log.records import InvokerEffect
from restate_server.observability import metrics
from restate_server.outcomes import Ended, Suspended as SuspendedTerminal, Terminal
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.codec import Decoder, Frame, ProtocolError, encode_frame
from restate_server.protocol.messages import MessageType as T
from restate_server.schema.model import Deployment, ProtocolType
from restate_server.schema.options import InvocationOptions
from restate_server.storage.journal import JournalEntry

log = logging.getLogger(__name__)

Propose = Callable[[InvokerEffect], None]

_MIB = 1024 * 1024


@dataclass(slots=True)
class Snapshot:
    """What an attempt replays, read from the committed store in one go."""

    partition: int
    invocation_id: bytes
    service: str
    handler: str
    key: str | None
    keyed: bool
    journal: list[JournalEntry]
    commands: int
    state: list[tuple[bytes, bytes]] | None  # None: lazy state (partial)
    deployment: Deployment
    protocol_version: int
    pinned: bool
    options: InvocationOptions
    idempotency_key: str | None
    retry_count: int = 0
    created_at: int = 0
    """Milliseconds since the epoch when the invocation was created (the start of its trace span)."""
    callees: validation.Callees | None = None
    """Whom a call may target (the schema registry's handlers); None: calls are not checked."""

    @property
    def journal_bytes(self) -> int:
        """Bytes the replay sends (the journal's payloads)."""
        return sum(len(entry.payload) for entry in self.journal)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageLimits:
    """`worker.invoker.message-size-limit` and `message-size-warning`, in bytes (upstream defaults)."""

    size_limit: int = 32 * _MIB
    size_warning: int = 10 * _MIB


@dataclass(slots=True)
class Outcome:
    kind: str  # "end" | "suspend"


class Transport:
    """Shared clients for all attempts of a node."""

    def __init__(
        self,
        *,
        signer: RequestSigner | None,
        additional_headers: dict[str, str],
        connect_timeout: float = 10.0,
    ) -> None:
        self.h2 = H2Pool(connect_timeout)
        self.http1 = Http1Client(connect_timeout)
        self.signer = signer
        self.additional_headers = additional_headers

    async def close(self) -> None:
        self.h2.close()
        await self.http1.close()


def _seed(invocation_id: bytes) -> int:
    return int.from_bytes(invocation_id[8:16], "big") ^ int.from_bytes(invocation_id[16:24], "big")


def start_message(snap: Snapshot) -> bytes:
    msg = pb.StartMessage(
        id=snap.invocation_id,
        debug_id=str(InvocationId.from_bytes(snap.invocation_id)),
        known_entries=len(snap.journal),
        key=snap.key or "",
        retry_count_since_last_stored_entry=snap.retry_count,
    )
    if snap.keyed:
        if snap.state is None:
            msg.partial_state = True
        else:
            for k, v in snap.state:
                msg.state_map.add(key=k, value=v)
    if snap.protocol_version >= 6:
        msg.random_seed = _seed(snap.invocation_id)
    if snap.protocol_version >= 7 and snap.idempotency_key is not None:
        msg.idempotency_key = snap.idempotency_key
    return encode_frame(T.START, msg.SerializeToString())


def replay_bytes(snap: Snapshot) -> bytes:
    parts = [start_message(snap)]
    for entry in snap.journal:
        parts.append(encode_frame(entry.type, entry.payload))
    return b"".join(parts)


def _rules(snap: Snapshot) -> validation.Rules:
    service = snap.deployment.services.get(snap.service)
    handler = service.handlers.get(snap.handler) if service is not None else None
    return validation.Rules.for_target(
        snap.protocol_version,
        service.ty if service is not None else None,
        handler.ty if handler is not None else None,
        snap.callees,
    )


def status_error(status: int, headers: dict[str, str]) -> AttemptError:
    """Why a non-200 answer fails the attempt (upstream's `handle_response_headers` mapping).

    Redirects are failures like any other unexpected status: the journal is never re-sent elsewhere.
    """
    retry_after = headers.get("retry-after")
    delay = float(retry_after) if retry_after is not None and retry_after.isdigit() else None
    if status in (502, 504):
        return AttemptError("RT0010", f"service is temporarily unavailable '{status}'")
    if status in (429, 503):
        return AttemptError("RT0023", f"service is rate limited due to '{status}'", retry_after=delay)
    if status == 413:
        return AttemptError("RT0019", "service replied with content too large")
    if status == 415:
        return AttemptError("RT0015", "the SDK doesn't support the negotiated protocol version")
    return AttemptError("RT0006", f"unexpected status code {status} from the deployment", retry_after=delay)


class Attempt:
    """Runs one attempt; `push` delivers notifications while a bidi stream is open."""

    def __init__(
        self,
        snap: Snapshot,
        transport: Transport,
        propose: Propose,
        *,
        limits: MessageLimits | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.snap = snap
        self.transport = transport
        self.propose = propose
        self.limits = limits or MessageLimits()
        self.clock: Clock = clock or LoopClock()
        self.rules = _rules(snap)
        self.replayed = len(snap.journal)
        self.next_command = snap.commands
        self.decoder = Decoder(self.limits.size_limit)
        self.stream: Stream | None = None
        self.bidi: BidiStream | None = None
        self.done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._buffered: list[bytes] = []
        self._last_activity = self.clock.monotonic()
        self._input_closed = False
        self.server_header: str | None = None
        self.large_messages = False  # a message past the size warning went by (see memory.trim_soon)
        self.trace_headers: list[tuple[str, str]] = []
        """`traceparent` of this attempt's span, when tracing is on."""
        self.bidi_mode = (
            snap.deployment.protocol_type == ProtocolType.BIDI_STREAM and not snap.deployment.use_http_11
        )
        """h2c bidi stream, else HTTP/1.1 request/response."""

    # ---- leader-side pushes
    def push(self, journal_index: int, type_: int, payload: bytes, ack_completion_id: int | None) -> None:
        if journal_index < self.replayed or self._input_closed or self.done.done():
            return
        if ack_completion_id is not None and self.snap.protocol_version >= 7:
            frame = encode_frame(
                T.PROPOSE_RUN_COMPLETION_ACK,
                pb.ProposeRunCompletionAckMessage(completion_id=ack_completion_id).SerializeToString(),
            )
        else:
            frame = encode_frame(type_, payload)
        if self.bidi is None:
            self._buffered.append(frame)
        else:
            self._last_activity = self.clock.monotonic()
            metrics.INVOKER_SENT_BYTES.inc(len(frame))
            self.bidi.send(frame)

    def abort(self, error: AttemptError | None = None) -> None:
        """End the attempt now with ``error`` (default: aborted by the leader)."""
        self._fail(error or AttemptError("RT0006", "attempt aborted"))

    # ---- request headers
    def _headers(self, path: str) -> list[tuple[str, str]]:
        snap = self.snap
        content_type = f"application/vnd.restate.invocation.v{snap.protocol_version}"
        headers = [
            ("content-type", content_type),
            ("accept", content_type),
            ("x-restate-invocation-id", str(InvocationId.from_bytes(snap.invocation_id))),
        ]
        if snap.keyed and snap.key is not None:
            headers.append(("x-restate-service-key", quote(snap.key, safe="")))
        headers.extend(self.trace_headers)
        headers.extend(self.transport.additional_headers.items())
        headers.extend(snap.deployment.additional_headers.items())
        if self.transport.signer is not None:
            headers.extend(self.transport.signer.headers(path, snap.key if snap.keyed else None).items())
        return headers

    def _url(self) -> tuple[str, int, str, str]:
        """Host, port, path and query, and the path below the deployment's (what requests sign)."""
        parts = urlsplit(self.snap.deployment.uri)
        base = parts.path.rstrip("/")
        rel = f"/invoke/{self.snap.service}/{self.snap.handler}"
        path = base + rel + (f"?{parts.query}" if parts.query else "")
        return (
            parts.hostname or "127.0.0.1",
            parts.port or (443 if parts.scheme == "https" else 80),
            path,
            rel,
        )

    # ---- running
    async def run(self) -> Outcome:
        opts = self.snap.options
        try:
            if self.bidi_mode:
                await self._open_bidi()
                return await self._wait_bidi(opts.inactivity_timeout, opts.abort_timeout)
            return await self._request_response(opts.abort_timeout + opts.inactivity_timeout)
        finally:
            if self.stream is not None and not self.stream.closed:
                self.stream.reset()

    async def _open_bidi(self) -> None:
        host, port, path, rel = self._url()
        replay = replay_bytes(self.snap)
        try:
            stream = await self.transport.h2.open_stream(host, port, path, self._headers(rel), self, replay)
            metrics.INVOKER_SENT_BYTES.inc(len(replay))
        except (TimeoutError, OSError) as exc:
            raise AttemptError("RT0010", f"cannot reach {self.snap.deployment.uri}: {exc}") from exc
        self.stream = self.bidi = stream
        # notifications that arrived while connecting go out after the replay, in order
        if self._buffered:
            buffered = b"".join(self._buffered)
            metrics.INVOKER_SENT_BYTES.inc(len(buffered))
            stream.send(buffered)
            self._buffered.clear()

    async def _wait_bidi(self, inactivity: float, abort: float) -> Outcome:
        """Wait for the SDK's terminal message; on inactivity ask it to suspend, later abort."""
        clock = self.clock
        handle: Timer | None = None

        def check() -> None:
            nonlocal handle
            if self.done.done():
                return
            limit = abort if self._input_closed else inactivity
            idle_for = clock.monotonic() - self._last_activity
            if idle_for >= limit:
                if self._input_closed:
                    self._fail(
                        AttemptError(
                            "RT0001",
                            f"the invocation stream was closed after the 'abort timeout' ({abort}s) fired",
                        )
                    )
                    return
                # inactivity: close our side so the SDK suspends, then allow abort_timeout
                self._input_closed = True
                self._last_activity = clock.monotonic()
                assert self.bidi is not None
                self.bidi.end()
                idle_for, limit = 0.0, abort
            handle = clock.call_later(limit - idle_for, check)

        handle = clock.call_later(inactivity, check)
        try:
            return await self.done
        finally:
            handle.cancel()

    async def _request_response(self, total_timeout: float) -> Outcome:
        _, _, path, rel = self._url()
        parts = urlsplit(self.snap.deployment.uri)
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # no user:password@, as h2c
        body = replay_bytes(self.snap) + b"".join(self._buffered)
        metrics.INVOKER_SENT_BYTES.inc(len(body))
        self._buffered.clear()
        self._input_closed = True
        exchange = self.transport.http1.exchange(origin + path, self._headers(rel), body, self, total_timeout)
        self.stream = exchange
        await exchange.run()
        return await self.done

    # ---- StreamListener
    def on_headers(self, status: int, headers: dict[str, str]) -> None:
        kind = "Http/bidi-stream" if self.bidi_mode else "Http/request-response"
        metrics.INVOKER_CLIENT_REQUESTS.labels(kind, str(status)).inc()
        self.server_header = headers.get("x-restate-server")
        if status != 200:
            self._fail(status_error(status, headers))
            return
        expected = f"application/vnd.restate.invocation.v{self.snap.protocol_version}"
        if headers.get("content-type", "") != expected:
            self._fail(AttemptError("RT0012", f"unexpected content type {headers.get('content-type')!r}"))

    def on_data(self, data: bytes) -> None:
        if self.done.done():
            return
        metrics.INVOKER_RECEIVED_BYTES.inc(len(data))
        self._last_activity = self.clock.monotonic()
        try:
            frames = self.decoder.feed(data)
        except ProtocolError as exc:
            # what preceded the bad header is proposed; the bad frame's payload is never buffered
            if exc.decoded:
                self._handle(exc.decoded, more=True)
            self._fail(AttemptError(exc.error_code, str(exc)))
            return
        if frames:
            self._handle(frames)

    def on_end(self) -> None:
        if not self.done.done():
            self._fail(AttemptError("RT0006", "the deployment closed the stream without an end message"))

    def on_error(self, error: Exception) -> None:
        if not self.done.done():
            err = error if isinstance(error, AttemptError) else AttemptError("RT0010", str(error))
            self._fail(err)

    def _fail(self, error: AttemptError) -> None:
        if not self.done.done():
            self.done.set_exception(error)
            if self.stream is not None and not self.stream.closed:
                self.stream.reset()

    # ---- frames -> effects
    def _handle(self, frames: list[Frame], *, more: bool = False) -> None:
        """Check the frames in order; propose what passed; fail on the first that did not.

        `more`: bytes followed these frames (which a terminal message must not be).
        """
        entries: list[tuple[int, int, bytes]] = []
        first = self.next_command
        terminal: Terminal | None = None
        error: AttemptError | None = None
        warning = self.limits.size_warning
        for frame in frames:
            if len(frame.payload) >= warning:
                self._warn_size(frame)
            if terminal is not None:
                error = _after_end()
                break
            try:
                checked = validation.check(frame, self.rules, self.next_command)
            except AttemptError as exc:
                error = exc
                break
            match checked:
                case validation.Kind.COMMAND:
                    entries.append((frame.type, frame.flags, frame.payload))
                    self.next_command += 1
                case validation.Kind.RUN_PROPOSAL:
                    entries.append((frame.type, frame.flags, frame.payload))
                case validation.Kind.AWAITING_ON:
                    pass
                case validation.Kind.END:
                    terminal = Ended()
                case validation.Suspended(completions=completions, signals=signals, names=names):
                    terminal = SuspendedTerminal(
                        completions=tuple(completions), signals=tuple(signals), names=tuple(names)
                    )
                case validation.Failed(error=sdk_error):
                    error = sdk_error
                    break
                case _:
                    assert_never(checked)
        if terminal is not None and error is None and (more or self.decoder.buffered):
            error = _after_end()
        if error is not None:
            terminal = None
        pin = None if self.snap.pinned else (self.snap.deployment.id, self.snap.protocol_version)
        if entries or terminal is not None or pin is not None:
            self.snap.pinned = True
            self.propose(
                InvokerEffect(
                    invocation_id=self.snap.invocation_id,
                    first_command_index=first,
                    entries=entries,
                    pin=pin,
                    terminal=terminal,
                    now=int(self.clock.time() * 1000),
                )
            )
        if error is not None:
            self._fail(error)
        elif terminal is not None and not self.done.done():
            self.done.set_result(Outcome("end" if isinstance(terminal, Ended) else "suspend"))
            if self.bidi is not None and not self.bidi.closed:
                self.bidi.end()

    def _warn_size(self, frame: Frame) -> None:
        self.large_messages = True
        log.warning(
            "message size warning for %s of invocation %s: %d >= %d bytes. Generating very large"
            " messages can make the system unstable if configured with too little memory; the"
            " threshold is worker.invoker.message-size-warning",
            validation.message_name(frame.type),
            InvocationId.from_bytes(self.snap.invocation_id),
            len(frame.payload),
            self.limits.size_warning,
        )


def _after_end() -> AttemptError:
    return AttemptError(
        validation.PROTOCOL_VIOLATION,
        "unexpected end of invocation stream: after EndMessage, ErrorMessage or SuspensionMessage"
        " no other bytes should be received",
    )
