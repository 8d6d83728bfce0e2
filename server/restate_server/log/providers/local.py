"""The sequencer and group commit shared by the in-process providers (memory and RocksDB).

Both providers run this one engine over a small synchronous :class:`Storage`, so the memory log
behaves exactly like the RocksDB log (LSNs, fencing, sealing, trim semantics, failure handling) and
tests that use it stand for the real thing.

Group commit: appends from every partition that arrive while a write is in flight are collected
into the next single write, made durable (fsync) and acknowledged together. One write is in flight
at a time, so each partition's records become durable in LSN order. Tails are fed in process from
the records just written (no read back: the partition processor's fast path).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from restate_server.log.api import (
    Fenced,
    LogClosedError,
    LogCorrupted,
    LogEntry,
    Sealed,
    TailState,
    TrimGap,
    entries,
    failed,
)
from restate_server.log.records import Record, decode, encode
from restate_server.observability import metrics

log = logging.getLogger(__name__)

INLINE_SYNC_BELOW = 0.001  # seconds: fsyncs faster than this run on the event loop
READ_CHUNK = 1024  # records per storage read while a tail catches up


@dataclass(frozen=True, slots=True, kw_only=True)
class Meta:
    """What a partition's log keeps besides its records (written durably)."""

    epoch: int = 0
    sealed: bool = False
    trim_point: int = 0


class Storage(Protocol):
    """Synchronous, durable-on-return storage under the engine; one partition's LSNs are unique keys."""

    def load(self, partition: int) -> tuple[Meta, int]:
        """The partition's meta and its next LSN (after the last record, at least trim point + 1)."""
        ...

    def write(self, batches: Sequence[tuple[int, int, Sequence[bytes]]]) -> None:
        """Write ``(partition, first_lsn, payloads)`` batches atomically and durably."""
        ...

    def write_meta(self, partition: int, meta: Meta) -> None: ...

    def trim(self, partition: int, meta: Meta) -> None:
        """Delete records ``<= meta.trim_point`` and store ``meta``, atomically."""
        ...

    def read(self, partition: int, from_lsn: int, to_lsn: int) -> list[tuple[int, bytes]]: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class _Partition:
    meta: Meta
    next_lsn: int  # assigned to the next submit
    durable: int  # the LSN after the last durable record
    sealed_tail: int | None = None  # set once sealed and drained: tails end there
    tails: list[_Subscriber] = field(default_factory=list)


@dataclass(slots=True)
class _Subscriber:
    batches: deque[tuple[int, Sequence[Record]]] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class _Pending:
    partition: int
    first: int
    records: Sequence[Record]
    payloads: list[bytes]
    future: asyncio.Future[int]
    submitted_at: float


class LocalLog:
    """A :class:`~restate_server.log.api.LogProvider` over a :class:`Storage`."""

    def __init__(self, storage: Storage, *, inline_below: float = INLINE_SYNC_BELOW) -> None:
        self._storage = storage
        # A fast disk is fsynced on the event loop (a thread hand-off costs more CPU than the wait);
        # a slow one in a writer thread, so the loop keeps serving meanwhile. Decided per batch
        # from the previous fsync's duration.
        self._inline_below = inline_below
        self._inline = False
        self._partitions: dict[int, _Partition] = {}
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-writer")
        self._closed = False

    def _state(self, partition: int) -> _Partition:
        state = self._partitions.get(partition)
        if state is None:
            meta, next_lsn = self._storage.load(partition)
            state = _Partition(meta=meta, next_lsn=next_lsn, durable=next_lsn)
            state.sealed_tail = next_lsn if meta.sealed else None
            self._partitions[partition] = state
        return state

    # ---- sequencing
    async def acquire(self, partition: int, epoch: int) -> int:
        self._check_open()
        state = self._state(partition)
        if epoch <= state.meta.epoch:
            raise Fenced(partition, epoch, state.meta.epoch)
        state.meta = Meta(epoch=epoch, sealed=state.meta.sealed, trim_point=state.meta.trim_point)
        await self._drain()  # appends of the old epoch submitted before now land before the fence
        self._storage.write_meta(partition, state.meta)
        return state.next_lsn

    async def seal(self, partition: int) -> int:
        self._check_open()
        state = self._state(partition)
        state.meta = Meta(epoch=state.meta.epoch, sealed=True, trim_point=state.meta.trim_point)
        await self._drain()
        self._storage.write_meta(partition, state.meta)
        state.sealed_tail = state.next_lsn
        for subscriber in state.tails:
            subscriber.wakeup.set()
        return state.next_lsn

    async def find_tail(self, partition: int) -> TailState:
        self._check_open()
        state = self._state(partition)
        return TailState(
            next_lsn=state.durable,
            sealed=state.meta.sealed,
            epoch=state.meta.epoch,
            trim_point=state.meta.trim_point,
        )

    # ---- appends
    async def append(self, partition: int, records: Sequence[Record], epoch: int) -> int:
        return await self.submit(partition, records, epoch)

    def submit(self, partition: int, records: Sequence[Record], epoch: int) -> asyncio.Future[int]:
        if self._closed:
            return failed(LogClosedError("log is closed"))
        state = self._state(partition)
        if epoch != state.meta.epoch:
            return failed(Fenced(partition, epoch, state.meta.epoch))
        if state.meta.sealed:
            return failed(Sealed(partition, state.next_lsn))
        first = state.next_lsn
        state.next_lsn = first + len(records)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        payloads = [encode(r) for r in records]
        self._pending.append(_Pending(partition, first, records, payloads, future, time.perf_counter()))
        metrics.BIFROST_LOCAL_APPENDS.inc()
        if self._flusher is None:
            self._idle.clear()
            self._flusher = loop.create_task(self._flush(), name="log-group-commit")
        return future

    async def _flush(self) -> None:
        try:
            while self._pending:
                if self._inline:
                    await asyncio.sleep(0)  # let this loop iteration's appends join the batch
                pending, self._pending = self._pending, []
                try:
                    await self._write([(p.partition, p.first, p.payloads) for p in pending])
                except Exception as exc:
                    self._fail(pending, exc)
                    continue
                durable_at = time.perf_counter()
                for p in pending:
                    metrics.BIFROST_LOCAL_APPEND_DURATION.observe(durable_at - p.submitted_at)
                    state = self._partitions[p.partition]
                    state.durable = p.first + len(p.records)
                    for tail in state.tails:
                        tail.batches.append((p.first, p.records))
                        tail.wakeup.set()
                    if not p.future.done():
                        p.future.set_result(p.first + len(p.records) - 1)
        finally:
            self._flusher = None
            self._idle.set()

    async def _write(self, batches: Sequence[tuple[int, int, Sequence[bytes]]]) -> None:
        metrics.BIFROST_LOCAL_WRITE_BATCH_COUNT.observe(sum(len(payloads) for _, _, payloads in batches))
        metrics.BIFROST_LOCAL_WRITE_BATCH_SIZE_BYTES.observe(
            sum(len(payload) for _, _, payloads in batches for payload in payloads)
        )
        started = time.perf_counter()
        if self._inline:
            self._storage.write(batches)
        else:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, functools.partial(self._storage.write, batches))
        self._inline = time.perf_counter() - started < self._inline_below

    def _fail(self, batch: list[_Pending], exc: Exception) -> None:
        """A failed write fails its appends and every later one, and frees their LSNs (no gap)."""
        log.error("log write failed: %s", exc)
        doomed, self._pending = [*batch, *self._pending], []
        for p in reversed(doomed):
            self._partitions[p.partition].next_lsn = p.first
            if not p.future.done():
                p.future.set_exception(exc)

    async def _drain(self) -> None:
        while not self._idle.is_set():
            await self._idle.wait()

    # ---- reads
    async def read(self, partition: int, from_lsn: int, to_lsn: int) -> list[LogEntry]:
        self._check_open()
        return self._read(partition, from_lsn, to_lsn)

    def _read(self, partition: int, from_lsn: int, to_lsn: int) -> list[LogEntry]:
        state = self._state(partition)
        if from_lsn <= state.meta.trim_point:
            raise TrimGap(partition, state.meta.trim_point)
        to_lsn = min(to_lsn, state.durable - 1)
        if to_lsn < from_lsn:
            return []
        stored = self._storage.read(partition, from_lsn, to_lsn)
        if len(stored) != to_lsn - from_lsn + 1:
            found = [lsn for lsn, _ in stored[:1]]
            raise LogCorrupted(
                f"partition {partition}: records {from_lsn}..{to_lsn} are missing from the log"
                f" (first found: {found[0] if found else 'none'})"
            )
        return [(lsn, decode(data)) for lsn, data in stored]

    async def tail(self, partition: int, from_lsn: int) -> AsyncIterator[list[LogEntry]]:
        self._check_open()
        state = self._state(partition)
        subscriber = _Subscriber()
        state.tails.append(subscriber)  # before catching up, so nothing written meanwhile is missed
        try:
            nxt = from_lsn
            while nxt < state.durable:
                batch = self._read(partition, nxt, nxt + READ_CHUNK - 1)
                nxt = batch[-1][0] + 1
                yield batch
                del batch  # not held while waiting: records may carry megabytes of payload
            while True:
                if not subscriber.batches:
                    if state.sealed_tail is not None and nxt >= state.sealed_tail:
                        return
                    subscriber.wakeup.clear()
                    await subscriber.wakeup.wait()
                    self._check_open()
                batch = _take(subscriber.batches, nxt)  # every queued append: one apply step for them all
                if batch:
                    nxt = batch[-1][0] + 1
                    yield batch
                del batch
        finally:
            state.tails.remove(subscriber)

    # ---- trimming and shutdown
    async def trim(self, partition: int, up_to_lsn: int) -> int:
        self._check_open()
        state = self._state(partition)
        point = min(up_to_lsn, state.durable - 1)
        if point > state.meta.trim_point:
            metrics.BIFROST_LOCAL_TRIM.inc()
            state.meta = Meta(epoch=state.meta.epoch, sealed=state.meta.sealed, trim_point=point)
            self._storage.trim(partition, state.meta)
        return state.meta.trim_point

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._drain()
        for state in self._partitions.values():
            for subscriber in state.tails:
                subscriber.wakeup.set()
        self._executor.shutdown(wait=True)
        self._storage.close()

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError("log is closed")


def _take(queued: deque[tuple[int, Sequence[Record]]], nxt: int) -> list[LogEntry]:
    """Every queued append from LSN ``nxt`` on, as one batch (what a catch-up read returned is skipped).

    A function of its own so that no local of the tail generator keeps the records while it waits."""
    batch: list[LogEntry] = []
    while queued:
        first, records = queued.popleft()
        if first + len(records) > nxt:
            batch += entries(first, records)[max(nxt - first, 0) :]
            nxt = batch[-1][0] + 1
    return batch
