"""etcd log provider: each partition's log as epoch-fenced, packed Txn appends, tailed by watch.

Key layout, under the provider's ``root`` (one loglet per partition in the normal case):

- ``{root}/log/{loglet:010d}/e`` -> msgpack ``[epoch, sealed]``: the sequencer's fence
- ``{root}/log/{loglet:010d}/t`` -> the trim point (ASCII integer); absent = 0
- ``{root}/log/{loglet:010d}/b/{first_lsn:020d}`` -> msgpack ``[epoch, [record, ...]]``: one append batch

Appends: one Txn in flight per provider (so per node) packs every partition's pending appends, one
key per partition and batch (etcd allows 128 operations and ~1.5 MiB per Txn). Each Txn compares,
per partition, the fence key's value with ``[our epoch, false]`` (fencing and sealing in one
compare) and ``create_revision == 0`` on the batch key. An ambiguous error (timeout, member lost)
retries the SAME keys: if the first try landed, the retry's compare fails and the failure branch's
reads show the batch key with our epoch, which acknowledges it, so nothing is written twice. A
partition whose fence moved fails alone (:class:`Fenced` / :class:`Sealed`), the others are retried.

Tails read the backlog in one consistent Txn and then watch the loglet from the next revision; after
a broken stream or a compaction they read again from the next LSN, so there are no gaps or repeats.
Trims move the trim key first, then delete in chunks and compact (deleted keys take space until then).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgpack

from restate_server import etcd
from restate_server.log.api import (
    Fenced,
    LogClosedError,
    LogEntry,
    Sealed,
    TailState,
    TrimGap,
    entries,
    failed,
)
from restate_server.log.providers import etcd_layout as layout
from restate_server.log.records import Record, encode

log = logging.getLogger(__name__)

MAX_TXN_KEYS = 40  # batch keys per Txn: each costs 2 compares and 2 failure reads (etcd: 128 per list)
MAX_TXN_BYTES = 1024 * 1024  # etcd refuses requests over 1.5 MiB by default
READ_PAGE = 256  # batch keys per read Txn
TRIM_CHUNK = 1000  # batch keys per delete Txn: a delete is one raft entry; keep each one small
RETRY_FIRST, RETRY_MAX = 0.05, 1.0  # seconds of backoff after a retryable etcd error
# seconds before an append Txn is retried: a proposal forwarded to a leader that died is only
# answered after etcd's own timeout (~7 s); retrying sooner (safe: the retry cannot write twice)
# reaches the new leader as soon as there is one
APPEND_TIMEOUT = 1.5
_T = TypeVar("_T")


@dataclass(slots=True)
class _Pending:
    partition: int
    epoch: int
    first: int
    records: Sequence[Record]
    payloads: list[bytes]
    future: asyncio.Future[int]


@dataclass(slots=True)
class _Batch:
    """One partition's share of a Txn: one key holding consecutive appends."""

    partition: int
    epoch: int
    first: int
    appends: list[_Pending]

    def value(self) -> bytes:
        payloads = [p for append in self.appends for p in append.payloads]
        packed: bytes = msgpack.packb([self.epoch, payloads], use_bin_type=True)
        return packed


class EtcdLog:
    """A :class:`~restate_server.log.api.LogProvider` on etcd; the client belongs to the caller."""

    def __init__(self, client: etcd.EtcdClient, *, root: bytes = b"/restate") -> None:
        self._client = client
        self._root = root
        self._epoch: dict[int, int] = {}  # loglet -> epoch this provider acquired
        self._sealed: set[int] = set()
        self._next: dict[int, int] = {}
        self._pending: list[_Pending] = []
        self._outstanding: dict[int, int] = {}  # loglet -> appends not yet acknowledged or failed
        self._settled: dict[int, asyncio.Future[None]] = {}  # loglet -> resolved when that reaches 0
        self._flusher: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = asyncio.get_running_loop().create_future()
        self.txns = 0  # Txns sent by the group commit (for throughput figures)

    # ---- keys
    def _prefix(self, loglet: int) -> bytes:
        return b"%s/log/%010d/" % (self._root, loglet)

    def _fence_key(self, loglet: int) -> bytes:
        return self._prefix(loglet) + b"e"

    def _trim_key(self, loglet: int) -> bytes:
        return self._prefix(loglet) + b"t"

    def _batch_key(self, loglet: int, first: int) -> bytes:
        return self._prefix(loglet) + b"b/%020d" % first

    def _batches(self, loglet: int) -> tuple[bytes, bytes]:
        start = self._prefix(loglet) + b"b/"
        return start, etcd.prefix_end(start)

    # ---- sequencing
    async def acquire(self, partition: int, epoch: int) -> int:
        self._check_open()
        fence = self._fence_key(partition)
        while True:
            current = await self._client.range(fence)
            current_epoch, sealed = layout.unfence(current.kvs)
            if epoch <= current_epoch:
                raise Fenced(partition, epoch, current_epoch)
            revision = current.kvs[0].mod_revision if current.kvs else 0
            # no appends until the new epoch is up; those already submitted land (or fail) first
            self._epoch.pop(partition, None)
            await self._quiet(partition)
            start, end = self._batches(partition)
            response = await self._client.txn(
                [etcd.modified_at(fence, revision)],
                [
                    etcd.op_put(fence, layout.fence(epoch, sealed)),
                    etcd.op_range(start, end, limit=1, descend=True),
                    etcd.op_range(self._trim_key(partition)),
                ],
            )
            if not response.succeeded:
                continue  # another acquire moved the fence meanwhile: look again
            last, trim = response.responses[1].response_range.kvs, response.responses[2].response_range.kvs
            self._epoch[partition] = epoch
            self._next[partition] = layout.next_lsn(last, trim)
            if sealed:
                self._sealed.add(partition)
            return self._next[partition]

    async def seal(self, partition: int) -> int:
        self._check_open()
        await self._quiet(partition)
        fence = self._fence_key(partition)
        while True:
            current = await self._client.range(fence)
            epoch, _sealed = layout.unfence(current.kvs)
            revision = current.kvs[0].mod_revision if current.kvs else 0
            response = await self._client.txn(
                [etcd.modified_at(fence, revision)], [etcd.op_put(fence, layout.fence(epoch, True))]
            )
            if response.succeeded:
                break
        self._sealed.add(partition)
        return (await self.find_tail(partition)).next_lsn

    async def find_tail(self, partition: int) -> TailState:
        self._check_open()
        start, end = self._batches(partition)
        response = await self._client.txn(
            [],
            [
                etcd.op_range(self._fence_key(partition)),
                etcd.op_range(start, end, limit=1, descend=True),
                etcd.op_range(self._trim_key(partition)),
            ],
        )
        fence, last, trim = (r.response_range.kvs for r in response.responses)
        epoch, sealed = layout.unfence(fence)
        return TailState(
            next_lsn=layout.next_lsn(last, trim),
            sealed=sealed,
            epoch=epoch,
            trim_point=layout.trim_point(trim),
        )

    async def db_size(self) -> int:
        """Bytes of etcd's database: alarm well before its quota (2 GiB by default) is reached."""
        return await self._client.db_size()

    # ---- appends
    async def append(self, partition: int, records: Sequence[Record], epoch: int) -> int:
        return await self.submit(partition, records, epoch)

    def submit(self, partition: int, records: Sequence[Record], epoch: int) -> asyncio.Future[int]:
        if self._closing.done():
            return failed(LogClosedError("log is closed"))
        current = self._epoch.get(partition, 0)
        if epoch != current:
            return failed(Fenced(partition, epoch, current))
        if partition in self._sealed:
            return failed(Sealed(partition, self._next[partition]))
        first = self._next[partition]
        self._next[partition] = first + len(records)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append(_Pending(partition, epoch, first, records, [encode(r) for r in records], future))
        self._outstanding[partition] = self._outstanding.get(partition, 0) + 1
        if self._flusher is None:
            self._idle.clear()
            self._flusher = loop.create_task(self._flush(), name="etcd-log-group-commit")
        return future

    async def _flush(self) -> None:
        try:
            while self._pending:
                await self._commit(self._take_round())
        finally:
            self._flusher = None
            self._idle.set()

    def _take_round(self) -> list[_Batch]:
        """The longest prefix of the pending appends that fits one Txn, one key per partition."""
        batches: dict[int, _Batch] = {}
        size = 0
        taken = 0
        for append in self._pending:
            batch = batches.get(append.partition)
            grows = sum(len(p) for p in append.payloads)
            if taken and (size + grows > MAX_TXN_BYTES or (batch is None and len(batches) >= MAX_TXN_KEYS)):
                break
            if batch is not None and batch.epoch != append.epoch:
                break  # a key holds one epoch's appends
            if batch is None:
                batches[append.partition] = _Batch(append.partition, append.epoch, append.first, [append])
            else:
                batch.appends.append(append)
            size += grows
            taken += 1
        del self._pending[:taken]
        return list(batches.values())

    async def _commit(self, batches: list[_Batch]) -> None:
        backoff = RETRY_FIRST
        while batches:
            compare, success, failure = [], [], []
            for batch in batches:
                key = self._batch_key(batch.partition, batch.first)
                compare.append(
                    etcd.value_is(self._fence_key(batch.partition), layout.fence(batch.epoch, False))
                )
                compare.append(etcd.created_at(key, 0))
                success.append(etcd.op_put(key, batch.value()))
                failure += [etcd.op_range(self._fence_key(batch.partition)), etcd.op_range(key)]
            try:
                self.txns += 1
                response = await self._client.txn(compare, success, failure, deadline=APPEND_TIMEOUT)
            except Exception as exc:
                if self._closing.done() or not etcd.is_retryable(exc):
                    for batch in batches:
                        self._fail(
                            batch, exc if not self._closing.done() else LogClosedError("log is closed")
                        )
                    return
                log.warning("etcd append failed, retrying the same batches: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MAX)
                continue
            if response.succeeded:
                for batch in batches:
                    self._ack(batch)
                return
            batches = self._sort_out(batches, response.responses)

    def _sort_out(self, batches: list[_Batch], reads: Sequence[Any]) -> list[_Batch]:
        """After a failed Txn: acknowledge what an earlier try wrote, fail the fenced, keep the rest."""
        retry = []
        for index, batch in enumerate(batches):
            fence = reads[2 * index].response_range.kvs
            written = reads[2 * index + 1].response_range.kvs
            epoch, sealed = layout.unfence(fence)
            if written and layout.batch_records(written[0].value)[0] == batch.epoch:
                self._ack(batch)  # an ambiguous earlier try landed
            elif epoch != batch.epoch or written:
                # a deposed sequencer's append (e.g. of a node cut off while another took over)
                fenced = Fenced(batch.partition, batch.epoch, epoch)
                log.warning("append refused: %s", fenced)
                self._fail(batch, fenced)
            elif sealed:
                self._sealed.add(batch.partition)
                self._fail(batch, Sealed(batch.partition, batch.first))
            else:
                retry.append(batch)  # only another partition's compare failed
        return retry

    def _ack(self, batch: _Batch) -> None:
        for append in batch.appends:
            if not append.future.done():
                append.future.set_result(append.first + len(append.records) - 1)
        self._settle(batch.partition, len(batch.appends))

    def _fail(self, batch: _Batch, error: Exception) -> None:
        """Fail the batch and every later append of its partition; their LSNs are reused (no gap)."""
        later = [p for p in self._pending if p.partition == batch.partition]
        self._pending = [p for p in self._pending if p.partition != batch.partition]
        if self._epoch.get(batch.partition) == batch.epoch:  # not re-acquired meanwhile
            self._next[batch.partition] = batch.first
        for append in [*batch.appends, *later]:
            if not append.future.done():
                append.future.set_exception(error)
        self._settle(batch.partition, len(batch.appends) + len(later))

    def _settle(self, partition: int, count: int) -> None:
        left = self._outstanding[partition] - count
        if left:
            self._outstanding[partition] = left
            return
        del self._outstanding[partition]
        waiter = self._settled.pop(partition, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _quiet(self, partition: int) -> None:
        """Wait until every append submitted to ``partition`` so far was acknowledged or failed."""
        while self._outstanding.get(partition):
            waiter = self._settled.get(partition)
            if waiter is None:
                waiter = self._settled[partition] = asyncio.get_running_loop().create_future()
            await waiter

    async def _drain(self) -> None:
        while not self._idle.is_set():
            await self._idle.wait()

    # ---- reads
    async def read(self, partition: int, from_lsn: int, to_lsn: int) -> list[LogEntry]:
        self._check_open()
        result: list[LogEntry] = []
        while from_lsn <= to_lsn:
            page, _revision, more, _sealed = await self._page(partition, from_lsn, to_lsn)
            result += page
            if not more or not page:
                break
            from_lsn = page[-1][0] + 1
        return result

    async def _page(
        self, partition: int, from_lsn: int, to_lsn: int
    ) -> tuple[list[LogEntry], int, bool, bool]:
        """Records in [from_lsn, to_lsn] from one consistent read: (entries, revision, more, sealed)."""
        start, end = self._batches(partition)
        first_key = self._batch_key(partition, from_lsn) + b"\x00"
        last_key = self._batch_key(partition, to_lsn) + b"\x00" if to_lsn < 10**20 else end
        response = await self._client.txn(
            [],
            [
                etcd.op_range(self._trim_key(partition)),
                etcd.op_range(start, first_key, limit=1, descend=True),
                etcd.op_range(first_key, last_key, limit=READ_PAGE),
                etcd.op_range(self._fence_key(partition)),
            ],
        )
        trim, before, after, fence = (r.response_range for r in response.responses)
        trim_point = layout.trim_point(trim.kvs)
        if from_lsn <= trim_point:
            raise TrimGap(partition, trim_point)
        found: list[LogEntry] = []
        for kv in [*before.kvs, *after.kvs]:
            first = int(kv.key[-20:])
            found += entries(first, layout.batch_records(kv.value)[1])
        found = [(lsn, r) for lsn, r in found if from_lsn <= lsn <= to_lsn]
        return found, int(response.header.revision), bool(after.more), layout.unfence(fence.kvs)[1]

    async def tail(self, partition: int, from_lsn: int) -> AsyncIterator[list[LogEntry]]:
        self._check_open()
        nxt = from_lsn
        while True:
            try:
                page, revision, more, sealed = await self._until_closed(self._page(partition, nxt, 2**63))
                if page:
                    nxt = page[-1][0] + 1
                    yield page
                del page  # not held while waiting: records may carry megabytes of payload
                if more:
                    continue
                if sealed:
                    return
                async with contextlib.aclosing(self._watch(partition, nxt, revision)) as batches:
                    async for batch in batches:
                        nxt = batch[-1][0] + 1
                        yield batch
                        del batch
                return  # the watch saw the seal
            except (layout.Behind, etcd.Compacted) as exc:
                log.debug("partition %d tail reads again from %d: %r", partition, nxt, exc)
            except Exception as exc:
                if not etcd.is_retryable(exc):
                    raise
                log.info("partition %d tail: etcd unavailable (%s), resuming from %d", partition, exc, nxt)
                await asyncio.sleep(RETRY_FIRST)

    async def _watch(self, partition: int, nxt: int, revision: int) -> AsyncGenerator[list[LogEntry], None]:
        """Batches from LSN ``nxt`` on, watched from ``revision + 1``; ends when the log is sealed."""
        start, _end = self._batches(partition)
        fence_key, prefix = self._fence_key(partition), self._prefix(partition)
        stream = self._client.watch(prefix, etcd.prefix_end(prefix), revision + 1)
        try:
            sealed = False
            while not sealed:
                response = await self._until_closed(anext(stream))
                batches, sealed = layout.watched(response.events, start, fence_key, nxt)
                del response  # not held while waiting: values may carry megabytes of payload
                while batches:
                    batch = batches.pop(0)
                    nxt = batch[-1][0] + 1
                    yield batch
                    del batch
        finally:
            await stream.aclose()

    async def _until_closed(self, awaitable: Awaitable[_T]) -> _T:
        """Await ``awaitable`` unless the log closes first (then :class:`LogClosedError`)."""
        task = asyncio.ensure_future(awaitable)
        try:
            await asyncio.wait([task, self._closing], return_when=asyncio.FIRST_COMPLETED)
        finally:  # closed, or our caller was cancelled: stop the inner await before leaving
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if task.cancelled():
            raise LogClosedError("log is closed")
        return task.result()

    # ---- trimming and shutdown
    async def trim(self, partition: int, up_to_lsn: int) -> int:
        self._check_open()
        trim_key = self._trim_key(partition)
        while True:
            state = await self.find_tail(partition)
            point = min(up_to_lsn, state.next_lsn - 1)
            if point <= state.trim_point:
                return state.trim_point
            current = await self._client.range(trim_key)
            revision = current.kvs[0].mod_revision if current.kvs else 0
            moved = await self._client.txn(
                [etcd.modified_at(trim_key, revision)], [etcd.op_put(trim_key, b"%d" % point)]
            )
            if moved.succeeded:
                break
        await self._delete_below(partition, point)
        return point

    async def _delete_below(self, partition: int, point: int) -> None:
        """Delete the batches that hold only LSNs <= point, in chunks, then compact."""
        start, _end = self._batches(partition)
        holder = await self._client.range(
            start, self._batch_key(partition, point + 1) + b"\x00", limit=1, descend=True
        )
        boundary = start
        if holder.kvs:
            kv = holder.kvs[0]
            first = int(kv.key[-20:])
            count = len(layout.batch_records(kv.value)[1])
            boundary = self._batch_key(partition, first) + (b"\x00" if first + count - 1 <= point else b"")
        revision = 0
        while True:
            keys = await self._client.range(start, boundary, limit=TRIM_CHUNK, keys_only=True)
            if not keys.kvs:
                break
            deleted = await self._client.txn([], [etcd.op_delete(start, keys.kvs[-1].key + b"\x00")])
            revision = int(deleted.header.revision)
        if revision:
            await self._client.compact(revision)

    async def close(self) -> None:
        if self._closing.done():
            return
        self._closing.set_result(None)
        await self._drain()

    def _check_open(self) -> None:
        if self._closing.done():
            raise LogClosedError("log is closed")
