"""A single node's log trimming: records the partition store has made durable leave the log.

Every ``interval`` seconds the store's memtables are flushed and each partition's log is trimmed
up to what is then durable (and, with snapshots, what a snapshot covers; `trim_point` in
`storage/snapshots/durability.py`), so the log stays small however long the node runs. A failed
flush (a full disk) skips the round: nothing is trimmed that the store may not have. A cluster
trims through its controller instead (every replica's store must be durable first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from restate_server.log.api import LogError, LogProvider
from restate_server.rocksdb import Database
from restate_server.storage.snapshots import durability
from restate_server.worker.snapshotter import SnapshotScheduler

log = logging.getLogger(__name__)


class LogTrimmer:
    """Trims the logs of ``partitions`` (read at each round) below the store's durable LSNs."""

    def __init__(
        self,
        db: Database,
        logs: LogProvider,
        partitions: Iterable[int],
        snapshotter: SnapshotScheduler | None,
        interval: float,
    ) -> None:
        self._db = db
        self._logs = logs
        self._partitions = partitions
        self._snapshotter = snapshotter
        self._interval = interval

    async def run(self) -> None:
        """Trim every ``interval`` seconds until cancelled (never when the interval is 0)."""
        while self._interval > 0:
            await asyncio.sleep(self._interval)
            try:
                await self.trim_once()
            except LogError:
                raise
            except Exception as exc:  # rocksdict's I/O errors are plain Exceptions
                log.warning("log trimming skipped this round: %s", exc)

    async def trim_once(self) -> None:
        durable = await asyncio.to_thread(durability.flush_durable_lsns, self._db, list(self._partitions))
        snapshots = self._snapshotter
        for partition, lsn in durable.items():
            point = durability.trim_point(
                durable_lsns=[lsn],
                archived_lsn=None if snapshots is None else snapshots.archived_lsn(partition),
                snapshots_enabled=snapshots is not None,
            )
            if point > 0:
                await self._logs.trim(partition, point)
