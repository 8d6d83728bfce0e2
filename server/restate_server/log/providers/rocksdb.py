"""RocksDB log provider with group commit.

Appends from every partition that arrive while a write is in flight are collected into the next
single `WriteBatch`, written with fsync in a worker thread (the event loop keeps serving), and
acknowledged together. One batch is in flight at a time, so each partition's records stay in LSN
order and the listener sees them in that order.

Key layout: b"L" + partition (u16 BE) + lsn (u64 BE) -> encoded record.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from restate_server.log.api import AppendListener, LogClosedError
from restate_server.log.records import Record, decode, encode
from restate_server.rocksdb import Database, new_batch

log = logging.getLogger(__name__)

_KEY = struct.Struct(">cHQ")
INLINE_SYNC_BELOW = 0.001  # seconds: fsyncs faster than this run on the event loop


def _key(partition: int, lsn: int) -> bytes:
    return _KEY.pack(b"L", partition, lsn)


class RocksDbLog:
    def __init__(self, db: Database, *, inline_below: float = INLINE_SYNC_BELOW) -> None:
        self._db = db
        # A fast disk is fsynced on the event loop (a thread hand-off costs more CPU than the wait);
        # a slow one in a writer thread, so the loop keeps serving meanwhile. Decided per batch
        # from the previous fsync's duration.
        self._inline_below = inline_below
        self._inline = False
        self._next: dict[int, int] = {}
        self._pending: list[tuple[int, int, Sequence[Record], list[bytes], asyncio.Future[int]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._listener: AppendListener | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-writer")
        self._closed = False

    def tail(self, partition: int) -> int:
        nxt = self._next.get(partition)
        if nxt is None:
            last = self._db.last_key_before(_key(partition, 2**64 - 1), _key(partition, 0))
            nxt = 1 if last is None else _KEY.unpack(last)[2] + 1
            self._next[partition] = nxt
        return nxt

    def set_listener(self, listener: AppendListener) -> None:
        self._listener = listener

    async def append(self, partition: int, records: Sequence[Record]) -> int:
        return await self.submit(partition, records)

    def submit(self, partition: int, records: Sequence[Record]) -> asyncio.Future[int]:
        """Like append, but assigns LSNs now: call order is log order, even before awaiting."""
        if self._closed:
            raise LogClosedError("log is closed")
        first = self.tail(partition)
        self._next[partition] = first + len(records)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append((partition, first, records, [encode(r) for r in records], future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush(), name="log-group-commit")
        return future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                if self._inline:
                    await asyncio.sleep(0)  # let this loop iteration's appends join the batch
                pending, self._pending = self._pending, []
                batch = new_batch()
                for partition, first, _records, payloads, _future in pending:
                    for offset, payload in enumerate(payloads):
                        batch.put(_key(partition, first + offset), payload)
                try:
                    started = time.perf_counter()
                    if self._inline:
                        self._db.write(batch, sync=True)
                    else:
                        await loop.run_in_executor(
                            self._executor, functools.partial(self._db.write, batch, sync=True)
                        )
                    self._inline = time.perf_counter() - started < self._inline_below
                except Exception as exc:  # a failed fsync leaves the log in an unknown state
                    log.critical("log write failed: %s", exc)
                    for *_, future in pending:
                        if not future.done():
                            future.set_exception(exc)
                    raise
                for partition, first, records, _payloads, future in pending:
                    if self._listener is not None:
                        self._listener(partition, first, records)
                    if not future.done():
                        future.set_result(first + len(records) - 1)
        finally:
            self._flusher = None

    def read(self, partition: int, from_lsn: int) -> Iterator[tuple[int, Record]]:
        for key, value in self._db.scan(_key(partition, from_lsn), _key(partition, 2**64 - 1)):
            yield _KEY.unpack(key)[2], decode(value)

    def trim(self, partition: int, up_to_lsn: int) -> None:
        # The last record always stays: it is where the next LSN is read from after a restart.
        up_to_lsn = min(up_to_lsn, self.tail(partition) - 2)
        if up_to_lsn < 1:
            return
        batch = new_batch()
        batch.delete_range(_key(partition, 0), _key(partition, up_to_lsn + 1))
        self._db.write(batch, sync=False)

    async def close(self) -> None:
        self._closed = True
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        self._executor.shutdown(wait=True)
