"""When this node snapshots the partitions it leads, and taking those snapshots in the background.

The processor reports every applied step (`on_applied`); a partition is due once
`snapshot-interval-num-records` records were applied since its latest snapshot (and, if set, once
`snapshot-interval` has passed since it), as upstream counts from the LSN its previous snapshot
covered. `create_now` is the explicit request (`restatectl snapshots create`, the admin API): it
ignores the intervals.

One task owns the work and takes one snapshot at a time (the machine is small and a snapshot is disk
and network bound); the RocksDB and object-store work runs in a thread. Nothing here blocks the event
loop or the processor: `on_applied` only records an LSN and maybe queues the partition. A partition's
latest snapshot is looked up the first time the partition is seen. A failed automatic snapshot is
retried after `FAILURE_BACKOFF`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from restate_server.config.worker import SnapshotsOptions
from restate_server.rocksdb import Database
from restate_server.storage.snapshots.model import SnapshotError, SnapshotMetadata
from restate_server.storage.snapshots.transfer import PartitionSnapshots

log = logging.getLogger(__name__)

FAILURE_BACKOFF = 30.0  # seconds before a failed automatic snapshot of a partition is tried again

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotPolicy:
    """The automatic-snapshot settings of `[worker.snapshots]`."""

    interval_num_records: int | None = None
    interval: float | None = None
    """Seconds."""
    num_retained: int = 1

    @classmethod
    def from_options(cls, options: SnapshotsOptions) -> SnapshotPolicy:
        return cls(
            interval_num_records=options.snapshot_interval_num_records,
            interval=options.snapshot_interval,
            num_retained=options.num_retained,
        )

    def due(self, *, applied_lsn: int, latest: SnapshotMetadata | None, now: float) -> bool:
        """Whether a partition at `applied_lsn` whose newest snapshot is `latest` needs a new one."""
        if self.interval_num_records is None and self.interval is None:
            return False  # snapshots only on request
        covered = 0 if latest is None else latest.applied_lsn
        if applied_lsn <= covered:
            return False
        if self.interval_num_records is not None and applied_lsn - covered < self.interval_num_records:
            return False
        return not (
            self.interval is not None
            and latest is not None
            and now - latest.created_at.timestamp() < self.interval
        )


class SnapshotScheduler:
    """Takes the snapshots of this node's partitions: automatically by policy, or on request."""

    def __init__(self, snapshots: PartitionSnapshots, policy: SnapshotPolicy, *, clock: Clock = time.time):
        self.snapshots = snapshots
        self.policy = policy
        self._clock = clock
        self._applied: dict[int, int] = {}
        self._latest: dict[int, SnapshotMetadata | None] = {}  # absent: not looked up yet
        self._archived: dict[int, int] = {}
        self._retry_after: dict[int, float] = {}
        self._queue: dict[int, list[asyncio.Future[SnapshotMetadata]]] = {}  # in request order
        self._running: int | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_options(
        cls, options: SnapshotsOptions, db: Database, *, staging_dir: Path, cluster_name: str, node_name: str
    ) -> SnapshotScheduler | None:
        """The node's scheduler, or None when no `worker.snapshots.destination` is configured."""
        snapshots = PartitionSnapshots.from_options(
            options, db, staging_dir=staging_dir, cluster_name=cluster_name, node_name=node_name
        )
        return None if snapshots is None else cls(snapshots, SnapshotPolicy.from_options(options))

    def start(self, partitions: Iterable[int] = ()) -> None:
        """Start the worker; `partitions` are looked up now, so their archived LSN is known early."""
        for partition in partitions:
            self._queue.setdefault(partition, [])
        self._task = asyncio.get_running_loop().create_task(self._run(), name="snapshot-scheduler")
        self._wake.set()

    async def stop(self) -> None:
        """Finish the snapshot in progress (its thread cannot be interrupted), fail the queued requests."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        for waiters in self._queue.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(SnapshotError("the node is shutting down"))
        self._queue.clear()

    def on_applied(self, partition: int, lsn: int) -> None:
        """The processor applied up to `lsn` on a partition this node leads."""
        self._applied[partition] = lsn
        if partition in self._queue or partition == self._running or self._stopping:
            return
        if self._clock() < self._retry_after.get(partition, 0.0):
            return
        if partition not in self._latest or self._due(partition):
            self._queue[partition] = []
            self._wake.set()

    async def create_now(self, partition: int) -> SnapshotMetadata:
        """A snapshot covering at least what the partition has applied now (the latest one if it does)."""
        if self._stopping:
            raise SnapshotError("the node is shutting down")
        waiter: asyncio.Future[SnapshotMetadata] = asyncio.get_running_loop().create_future()
        self._queue.setdefault(partition, []).append(waiter)
        self._wake.set()
        return await waiter

    def latest(self, partition: int) -> SnapshotMetadata | None:
        """The newest snapshot known for the partition (None: none, or not looked up yet)."""
        return self._latest.get(partition)

    def archived_lsn(self, partition: int) -> int | None:
        """The LSN the oldest kept snapshot covers (None: no snapshot or not known yet): the trim bound."""
        return self._archived.get(partition)

    def _due(self, partition: int) -> bool:
        now = self._clock()
        if now < self._retry_after.get(partition, 0.0):
            return False
        return self.policy.due(
            applied_lsn=self._applied.get(partition, 0), latest=self._latest.get(partition), now=now
        )

    async def _run(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            while self._queue and not self._stopping:
                partition = next(iter(self._queue))
                waiters = self._queue.pop(partition)
                self._running = partition
                try:
                    await self._serve(partition, waiters)
                finally:
                    self._running = None
                if partition in self._applied and partition not in self._queue and self._due(partition):
                    self._queue[partition] = []

    async def _serve(self, partition: int, waiters: list[asyncio.Future[SnapshotMetadata]]) -> None:
        try:
            if partition not in self._latest:
                await self._look_up(partition)
            if not waiters and not self._due(partition):
                return
            metadata = await self._snapshot(partition, explicit=bool(waiters))
        except Exception as exc:  # an object-store or disk failure: report, back off, keep serving
            log.warning("partition %d: snapshot failed: %s", partition, exc)
            self._retry_after[partition] = self._clock() + FAILURE_BACKOFF
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(metadata)

    async def _look_up(self, partition: int) -> None:
        self._latest[partition] = await self.snapshots.latest(partition)
        archived = await self.snapshots.archived_lsn(partition, self.policy.num_retained)
        if archived is not None:
            self._archived[partition] = archived

    async def _snapshot(self, partition: int, *, explicit: bool) -> SnapshotMetadata:
        latest = self._latest.get(partition)
        if (
            explicit
            and latest is not None
            and latest.applied_lsn >= await self.snapshots.applied_lsn(partition)
        ):
            return latest  # nothing applied since: the latest snapshot already covers it
        started = time.monotonic()
        metadata = await self.snapshots.create(partition)
        self._latest[partition] = metadata
        archived = await self.snapshots.prune(partition, self.policy.num_retained)
        if archived is not None:
            self._archived[partition] = archived
        log.info(
            "partition %d: snapshot %s at applied LSN %d (%d rows, %d bytes) stored in %s in %.2fs",
            partition,
            metadata.snapshot_id,
            metadata.applied_lsn,
            metadata.rows,
            metadata.size_bytes,
            self.snapshots.repository.destination,
            time.monotonic() - started,
        )
        return metadata
