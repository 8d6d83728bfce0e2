"""Create, find and restore partition snapshots: the API the node and the cluster call.

`PartitionSnapshots` ties the node's partition store to a repository. Every method is async and runs
the blocking work (RocksDB checkpoint and scans, SST files, object-store transfers) in a thread, so
the event loop never waits on it. A snapshot is consistent: its rows and its APPLIED_LSN come from one
checkpoint of the store. A restore only goes into a partition with no rows, and is atomic.

Work files live in a staging directory on the same filesystem as the store (hard links, no copies);
each operation uses its own subdirectory and removes it, and `clear_staging` removes what a crash left.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from restate_server.config.worker import SnapshotsOptions
from restate_server.rocksdb import Database
from restate_server.storage.snapshots import rows
from restate_server.storage.snapshots.model import (
    PartitionNotEmpty,
    SnapshotError,
    SnapshotMetadata,
    SnapshotMissing,
)

if TYPE_CHECKING:  # the object-store client (~12 ms of every start) loads only when snapshots are configured
    from restate_server.storage.snapshots.repository import SnapshotRepository

log = logging.getLogger(__name__)

_RESTORE_ATTEMPTS = 3  # a snapshot pruned between reading latest.json and downloading it: look again


class PartitionSnapshots:
    """Snapshots of this node's partition store in one repository."""

    def __init__(
        self,
        db: Database,
        repository: SnapshotRepository,
        *,
        staging_dir: Path,
        cluster_name: str,
        node_name: str,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.repository = repository
        self.staging_dir = staging_dir
        self.cluster_name = cluster_name
        self.node_name = node_name
        self._now = now

    @classmethod
    def from_options(
        cls, options: SnapshotsOptions, db: Database, *, staging_dir: Path, cluster_name: str, node_name: str
    ) -> PartitionSnapshots | None:
        """None when no destination is configured (snapshots disabled)."""
        if options.destination is None:
            return None
        from restate_server.storage.snapshots.repository import SnapshotRepository

        repository = SnapshotRepository.open(options.destination, options.object_store)
        return cls(db, repository, staging_dir=staging_dir, cluster_name=cluster_name, node_name=node_name)

    async def create(self, partition: int) -> SnapshotMetadata:
        """Snapshot the partition as it is now and upload it; it becomes the latest if it is newer."""
        return await asyncio.to_thread(self._create, partition)

    async def latest(self, partition: int) -> SnapshotMetadata | None:
        return await asyncio.to_thread(self.repository.latest, partition)

    async def restore_latest(self, partition: int) -> SnapshotMetadata | None:
        """Load the latest snapshot into the store, which must hold no row of the partition.

        Returns the snapshot restored (the store's APPLIED_LSN is now its `applied_lsn`: the processor
        replays the log from the next LSN), or None when the partition has no snapshot. Raises
        :class:`PartitionNotEmpty` rather than mix two states.
        """
        return await asyncio.to_thread(self._restore, partition)

    async def restore_empty(self, partitions: Iterable[int]) -> dict[int, SnapshotMetadata]:
        """Restore every partition that has no row in the store and a snapshot (a new or wiped replica)."""
        restored: dict[int, SnapshotMetadata] = {}
        for partition in partitions:
            if not await asyncio.to_thread(rows.is_empty, self.db, partition):
                continue
            metadata = await self.restore_latest(partition)
            if metadata is not None:
                log.info(
                    "partition %d restored from snapshot %s at applied LSN %d (%d rows, %d bytes, by %s)",
                    partition,
                    metadata.snapshot_id,
                    metadata.applied_lsn,
                    metadata.rows,
                    metadata.size_bytes,
                    metadata.node_name,
                )
                restored[partition] = metadata
        return restored

    async def applied_lsn(self, partition: int) -> int:
        """The partition's APPLIED_LSN in the store now."""
        return await asyncio.to_thread(rows.applied_lsn, self.db, partition)

    async def archived_lsn(self, partition: int, keep: int) -> int | None:
        """The applied LSN of the oldest of the newest `keep` snapshots (None: no snapshot)."""
        retained = await asyncio.to_thread(self.repository.retained, partition, keep)
        return retained[0].applied_lsn if retained else None

    async def prune(self, partition: int, keep: int) -> int | None:
        """Delete all but the newest `keep` snapshots; returns the archived LSN (see `repository.prune`)."""
        return await asyncio.to_thread(self.repository.prune, partition, keep)

    def clear_staging(self) -> None:
        """Remove work files a crash left behind (call before any snapshot runs)."""
        shutil.rmtree(self.staging_dir, ignore_errors=True)

    def _work_dir(self, kind: str, partition: int) -> Path:
        return self.staging_dir / f"{kind}-{partition}-{uuid.uuid4().hex[:12]}"

    def _create(self, partition: int) -> SnapshotMetadata:
        work = self._work_dir("export", partition)
        try:
            exported = rows.export_rows(self.db, partition, work)
            return self.repository.upload(
                exported,
                partition=partition,
                created_at=self._now(),
                cluster_name=self.cluster_name,
                node_name=self.node_name,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _restore(self, partition: int) -> SnapshotMetadata | None:
        if not rows.is_empty(self.db, partition):
            raise PartitionNotEmpty(
                f"partition {partition} already has rows in the partition store; refusing to restore a"
                " snapshot over them"
            )
        for _ in range(_RESTORE_ATTEMPTS):
            metadata = self.repository.latest(partition)
            if metadata is None:
                return None
            work = self._work_dir("restore", partition)
            work.mkdir(parents=True)
            try:
                sst = work / rows.DATA_FILE
                try:
                    self.repository.download(metadata, sst)
                except SnapshotMissing:
                    continue
                rows.import_rows(self.db, partition, sst, metadata.applied_lsn)
                return metadata
            finally:
                shutil.rmtree(work, ignore_errors=True)
        raise SnapshotError(
            f"partition {partition}: the latest snapshot kept disappearing while it was downloaded"
        )
