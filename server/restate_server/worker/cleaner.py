"""Retention cleanup: purges completed invocations whose retention has expired, in small steps.

A pass walks each led partition's status table a bounded number of rows at a time
(`restate_server.worker.scan`), yielding to the event loop between steps, so a store with millions
of retained invocations never stalls the ingress for more than one step. Expired ids are proposed as
`Purge` records of at most `PURGE_BATCH` ids (bounding the apply step too), each retried until it
lands. Only rows already committed are read; an invocation completed during the pass is seen by the
next pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from restate_server.log.records import Purge
from restate_server.rocksdb import Database
from restate_server.storage import keys
from restate_server.storage.status import InvocationStatus, Status, peek_status
from restate_server.worker import scan
from restate_server.worker.errors import WorkerUnavailable

log = logging.getLogger(__name__)

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
        scan_chunk: int = scan.CHUNK,
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
        expired: list[bytes] = []
        purged = 0
        async for rows in scan.chunks(self.db, prefix, self._scan_chunk):
            for key, value in rows:
                if peek_status(value) != Status.COMPLETED:
                    continue
                expires_at = InvocationStatus.decode(value).expires_at
                if expires_at is not None and expires_at <= now:
                    expired.append(key[len(prefix) :])
            purged += await self._purge(partition, expired, now, at_least=self._purge_batch)
        return purged + await self._purge(partition, expired, now, at_least=1)

    async def _purge(self, partition: int, expired: list[bytes], now: int, *, at_least: int) -> int:
        """Propose batches of expired ids while at least ``at_least`` are waiting; removes them."""
        purged = 0
        while len(expired) >= at_least and expired:
            ids = expired[: self._purge_batch]
            del expired[: self._purge_batch]
            await self._propose(partition, Purge(invocation_ids=ids, now=now))
            purged += len(ids)
        return purged
