"""Retention cleanup: purges completed invocations whose retention has expired, in small steps.

A pass walks each led partition's status table from a cursor, a bounded number of rows per step
(`SCAN_CHUNK`), yielding to the event loop between steps, so a store with millions of retained
invocations never stalls the ingress for more than one step. Expired ids are proposed as `Purge`
records of at most `PURGE_BATCH` ids (bounding the apply step too), each retried until it lands.
Only rows already committed are read; an invocation completed during the pass is seen by the next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from restate_server.log.records import Purge
from restate_server.rocksdb import Database, prefix_end
from restate_server.storage import keys
from restate_server.storage.status import InvocationStatus, Status, peek_status
from restate_server.worker.errors import WorkerUnavailable

log = logging.getLogger(__name__)

SCAN_CHUNK = 250  # status rows read between two yields to the event loop (about 2 ms of decoding)
PURGE_BATCH = 500  # invocation ids per Purge record

ProposePurge = Callable[[int, Purge], Awaitable[int]]
"""Propose a Purge to a partition until it lands (raises if the partition is not led any more)."""


class Cleaner:
    def __init__(
        self,
        db: Database,
        *,
        partitions: Callable[[], list[int]],
        propose: ProposePurge,
        interval: float,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        scan_chunk: int = SCAN_CHUNK,
        purge_batch: int = PURGE_BATCH,
    ) -> None:
        self.db = db
        self._partitions = partitions
        self._propose = propose
        self.interval = interval
        self._now_ms = now_ms
        self._scan_chunk = scan_chunk
        self._purge_batch = purge_batch

    async def run(self) -> None:
        """A pass every `interval` seconds, forever."""
        while True:
            await asyncio.sleep(self.interval)
            await self.clean_expired()

    async def clean_expired(self) -> int:
        """One pass over every led partition; returns how many invocations were proposed for purging."""
        purged = 0
        for partition in self._partitions():
            try:
                purged += await self._clean_partition(partition)
            except WorkerUnavailable:
                log.info("partition %d: no longer led, retention cleanup stops there", partition)
        return purged

    async def _clean_partition(self, partition: int) -> int:
        now = self._now_ms()
        prefix = keys.table(keys.STATUS, partition)
        end = prefix_end(prefix)
        cursor: bytes | None = prefix
        expired: list[bytes] = []
        purged = 0
        while cursor is not None:
            cursor = self._scan_step(cursor, end, len(prefix), now, expired)
            while len(expired) >= self._purge_batch or (cursor is None and expired):
                ids, expired = expired[: self._purge_batch], expired[self._purge_batch :]
                await self._propose(partition, Purge(invocation_ids=ids, now=now))
                purged += len(ids)
            await asyncio.sleep(0)  # let the ingress in between two steps
        return purged

    def _scan_step(self, start: bytes, end: bytes, skip: int, now: int, expired: list[bytes]) -> bytes | None:
        """Read up to `scan_chunk` rows from `start`; returns where the next step starts (None: done)."""
        rows = 0
        for key, value in self.db.scan(start, end):
            if rows == self._scan_chunk:
                return key
            rows += 1
            if peek_status(value) != Status.COMPLETED:
                continue
            expires_at = InvocationStatus.decode(value).expires_at
            if expires_at is not None and expires_at <= now:
                expired.append(key[skip:])
        return None
