"""One invocation attempt: open a stream to the deployment, replay the journal, collect effects.

The attempt turns what the SDK sends into `InvokerEffect` records (proposed in order, without
waiting for each to be durable) and ends with one of: the SDK's End, a Suspension, or an error
(`AttemptError`). Bidi streams (h2c) stay open for notifications pushed by the leader; request/
response attempts (HTTP/1.1) send everything up front and read the whole answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from restate_server.ids import InvocationId
from restate_server.invoker.errors import AttemptError, SdkError
from restate_server.invoker.h2c import H2Pool, H2Stream
from restate_server.log.records import Ended, InvokerEffect, Suspended, Terminal
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.codec import Decoder, Frame, ProtocolError, encode_frame
from restate_server.protocol.messages import MessageType as T, decode_suspension, is_command, is_custom
from restate_server.schema.model import Deployment, ProtocolType
from restate_server.schema.options import InvocationOptions
from restate_server.storage.journal import JournalEntry

log = logging.getLogger(__name__)

Propose = Callable[[InvokerEffect], None]


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


@dataclass(slots=True)
class Outcome:
    kind: str  # "end" | "suspend"


class Transport:
    """Shared clients for all attempts of a node."""

    def __init__(
        self, *, signer: Any, additional_headers: dict[str, str], connect_timeout: float = 10.0
    ) -> None:
        self.h2 = H2Pool(connect_timeout)
        self.http1: aiohttp.ClientSession | None = None
        self.signer = signer
        self.additional_headers = additional_headers

    def http1_session(self) -> aiohttp.ClientSession:
        if self.http1 is None or self.http1.closed:
            self.http1 = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=False),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                auto_decompress=False,
            )
        return self.http1

    async def close(self) -> None:
        self.h2.close()
        if self.http1 is not None:
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


class Attempt:
    """Runs one attempt; `push` delivers notifications while a bidi stream is open."""

    def __init__(self, snap: Snapshot, transport: Transport, propose: Propose) -> None:
        self.snap = snap
        self.transport = transport
        self.propose = propose
        self.replayed = len(snap.journal)
        self.next_command = snap.commands
        self.decoder = Decoder()
        self.stream: H2Stream | None = None
        self.done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._buffered: list[bytes] = []
        self._last_activity = time.monotonic()
        self._input_closed = False
        self._status: int | None = None
        self.server_header: str | None = None

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
        if self.stream is None:
            self._buffered.append(frame)
        else:
            self._last_activity = time.monotonic()
            self.stream.send(frame)

    def abort(self) -> None:
        if self.stream is not None:
            self.stream.reset()
        if not self.done.done():
            self.done.set_exception(AttemptError("RT0006", "attempt aborted"))

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
        headers.extend(self.transport.additional_headers.items())
        headers.extend(snap.deployment.additional_headers.items())
        if self.transport.signer is not None:
            headers.extend(self.transport.signer.headers(path, snap.key if snap.keyed else None).items())
        return headers

    def _url(self) -> tuple[str, int, str, str]:
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
        bidi = (
            self.snap.deployment.protocol_type == ProtocolType.BIDI_STREAM
            and not self.snap.deployment.use_http_11
        )
        try:
            if bidi:
                await self._open_bidi()
                return await self._wait_bidi(opts.inactivity_timeout, opts.abort_timeout)
            return await self._request_response(opts.abort_timeout + opts.inactivity_timeout)
        finally:
            if self.stream is not None and not self.stream.closed:
                self.stream.reset()

    async def _open_bidi(self) -> None:
        host, port, path, rel = self._url()
        try:
            stream = await self.transport.h2.open_stream(
                host, port, path, self._headers(rel), self, replay_bytes(self.snap)
            )
        except (TimeoutError, OSError) as exc:
            raise AttemptError("RT0010", f"cannot reach {self.snap.deployment.uri}: {exc}") from exc
        # notifications that arrived while connecting go out after the replay, in order
        self.stream = stream
        if self._buffered:
            stream.send(b"".join(self._buffered))
            self._buffered.clear()

    async def _wait_bidi(self, inactivity: float, abort: float) -> Outcome:
        """Wait for the SDK's terminal message; on inactivity ask it to suspend, later abort."""
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def check() -> None:
            nonlocal handle
            if self.done.done():
                return
            limit = abort if self._input_closed else inactivity
            idle_for = time.monotonic() - self._last_activity
            if idle_for >= limit:
                if self._input_closed:
                    self._fail(
                        AttemptError("RT0001", "the invocation stream was aborted due to the abort timeout")
                    )
                    return
                # inactivity: close our side so the SDK suspends, then allow abort_timeout
                self._input_closed = True
                self._last_activity = time.monotonic()
                assert self.stream is not None
                self.stream.end()
                idle_for, limit = 0.0, abort
            handle = loop.call_later(limit - idle_for, check)

        handle = loop.call_later(inactivity, check)
        try:
            return await self.done
        finally:
            if handle is not None:
                handle.cancel()

    async def _request_response(self, total_timeout: float) -> Outcome:
        host, port, path, rel = self._url()
        body = replay_bytes(self.snap)
        for frame in self._buffered:
            body += frame
        self._input_closed = True
        url = f"http://{host}:{port}{path}"
        try:
            async with self.transport.http1_session().post(
                url, data=body, headers=self._headers(rel), timeout=aiohttp.ClientTimeout(total=total_timeout)
            ) as resp:
                self.on_headers(resp.status, {k.lower(): v for k, v in resp.headers.items()})
                async for chunk in resp.content.iter_any():
                    self.on_data(chunk)
                self.on_end()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.on_error(AttemptError("RT0010", f"request to {self.snap.deployment.uri} failed: {exc}"))
        return await self.done

    # ---- StreamListener
    def on_headers(self, status: int, headers: dict[str, str]) -> None:
        self._status = status
        self.server_header = headers.get("x-restate-server")
        if status != 200:
            retry_after = headers.get("retry-after")
            self._fail(
                AttemptError(
                    "RT0006" if status not in (413,) else "RT0019",
                    f"unexpected status code {status} from the deployment",
                    retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
                )
            )
            return
        expected = f"application/vnd.restate.invocation.v{self.snap.protocol_version}"
        if headers.get("content-type", "") != expected:
            self._fail(AttemptError("RT0012", f"unexpected content type {headers.get('content-type')!r}"))

    def on_data(self, data: bytes) -> None:
        if self.done.done():
            return
        self._last_activity = time.monotonic()
        try:
            frames = self.decoder.feed(data)
        except ProtocolError as exc:
            self._fail(AttemptError("RT0012", str(exc)))
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
    def _handle(self, frames: list[Frame]) -> None:
        entries: list[tuple[int, int, bytes]] = []
        first = self.next_command
        terminal: Terminal | None = None
        error: AttemptError | None = None
        for frame in frames:
            t = frame.type
            if is_command(t) or is_custom(t):
                entries.append((t, frame.flags, frame.payload))
                self.next_command += 1
            elif t == T.PROPOSE_RUN_COMPLETION:
                entries.append((t, frame.flags, frame.payload))
            elif t == T.END:
                terminal = Ended()
            elif t == T.SUSPENSION:
                try:
                    completions, signals, names, _ = decode_suspension(
                        frame.payload, self.snap.protocol_version
                    )
                except ValueError as exc:
                    error = AttemptError("RT0012", f"bad suspension: {exc}")
                else:
                    if not (completions or signals or names):
                        error = AttemptError("RT0012", "empty suspension")
                    else:
                        terminal = Suspended(
                            completions=tuple(completions), signals=tuple(signals), names=tuple(names)
                        )
            elif t == T.ERROR:
                msg = pb.ErrorMessage.FromString(frame.payload)
                retry_after = msg.next_retry_delay / 1000 if msg.HasField("next_retry_delay") else None
                error = SdkError(msg.code, msg.message, retry_after=retry_after, behavior=int(msg.behavior))
            elif t == T.AWAITING_ON:
                continue
            if terminal is not None or error is not None:
                break
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
                    now=int(time.time() * 1000),
                )
            )
        if error is not None:
            self._fail(error)
        elif terminal is not None and not self.done.done():
            self.done.set_result(Outcome("end" if isinstance(terminal, Ended) else "suspend"))
            if self.stream is not None and not self.stream.closed:
                self.stream.end()
