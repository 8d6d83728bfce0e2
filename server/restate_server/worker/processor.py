"""Partition processor: applies its log, in order, to the partition store.

On start it checks that its log still holds everything after the store's last applied LSN and
replays that suffix (actions dropped: they were either carried out before the crash, or are
re-derived when leadership starts). Then it follows the log's tail (in process, the records just
made durable, never read back), applies each batch in one transaction, commits, and only then gives
the batch's actions to the leadership (upstream: `partition/mod.rs`), which drops them unless this
node leads the partition: a follower applies the same records and does nothing else.

A commit that fails (the store's disk is full, RocksDB is read-only until it recovers) is retried
with backoff until it lands: the batch is never skipped and nothing after it is applied first, so
the partition stalls rather than diverges, and resumes by itself once the store accepts writes.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from restate_server.log.api import LogCorrupted, LogEntry, LogProvider
from restate_server.observability import metrics
from restate_server.rocksdb import Database
from restate_server.storage import fsm, status
from restate_server.storage.transaction import Transaction
from restate_server.worker import actions as act
from restate_server.worker.state_machine import Context, ServiceLookup, apply

log = logging.getLogger(__name__)

MAX_BATCH = 256  # records per transaction: bounds latency of one apply step
COMMIT_RETRY_INITIAL = 0.05  # seconds before retrying a failed store commit, doubling ...
COMMIT_RETRY_MAX = 2.0  # ... up to this: RocksDB retries its own recovery about every second
ActionSink = Callable[[int, list[act.Action]], None]
Announced = Callable[[int, int], None]
"""(partition, leader epoch): an `AnnounceLeader` was applied and moved the partition's epoch."""
Applied = Callable[[int, int], None]
"""(partition, applied LSN) after each live apply step."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Applied:
    actions: list[act.Action]
    leader_epoch: int


class PartitionProcessor:
    def __init__(
        self,
        partition: int,
        num_partitions: int,
        db: Database,
        log_provider: LogProvider,
        lookup_service: ServiceLookup,
    ) -> None:
        self.partition = partition
        self.num_partitions = num_partitions
        self.db = db
        self.log = log_provider
        self.lookup_service = lookup_service
        self.applied_lsn = 0
        self.last_now = 0
        self.leader_epoch = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self.on_actions: ActionSink | None = None
        self.on_announced: Announced | None = None
        self.on_applied: Applied | None = None
        self.commit_failures = 0
        """Consecutive failed commits of the current batch (0 while the store accepts writes)."""

    async def replay(self) -> int:
        """Apply what the log has beyond the store; returns the number of records replayed.

        Raises :class:`LogCorrupted` when the log no longer reaches the store: its retained records
        ``trim_point + 1 .. next_lsn - 1`` must include everything after ``applied_lsn``, i.e.
        ``trim_point <= applied_lsn < next_lsn``.
        """
        txn = Transaction(self.db)
        if status.build_indexes(txn, self.partition):  # a store written before an index
            txn.commit()
        self.applied_lsn = fsm.get_int(txn, self.partition, fsm.APPLIED_LSN)
        self.last_now = fsm.get_int(txn, self.partition, fsm.LAST_NOW)
        self.leader_epoch = fsm.get_int(txn, self.partition, fsm.LEADER_EPOCH)
        tail = await self.log.find_tail(self.partition)
        if not tail.trim_point <= self.applied_lsn < tail.next_lsn:
            raise LogCorrupted(
                f"partition {self.partition}: the partition store applied up to LSN {self.applied_lsn}"
                f" but the log holds LSNs {tail.trim_point + 1}..{tail.next_lsn - 1}"
                f" (trim point {tail.trim_point}, next LSN {tail.next_lsn}): acknowledged records are missing"
            )
        replayed = 0
        while self.applied_lsn + 1 < tail.next_lsn:
            last = min(self.applied_lsn + MAX_BATCH, tail.next_lsn - 1)
            batch = await self.log.read(self.partition, self.applied_lsn + 1, last)
            if not batch or batch[0][0] != self.applied_lsn + 1:
                raise LogCorrupted(
                    f"partition {self.partition}: LSN {self.applied_lsn + 1} is missing from the log"
                )
            await self._apply(batch)
            replayed += len(batch)
        metrics.PARTITION_START.labels(str(self.partition)).inc()
        return replayed

    async def run(self) -> None:
        """Apply durable appends as the log's tail delivers them, forever."""
        async for entries in self.log.tail(self.partition, self.applied_lsn + 1):
            for start in range(0, len(entries), MAX_BATCH):
                await self._apply_live(entries[start : start + MAX_BATCH])
            del entries  # not held until the next batch: records may carry megabytes of payload

    async def _apply_live(self, batch: list[LogEntry]) -> None:
        batch = [(lsn, r) for lsn, r in batch if lsn > self.applied_lsn]
        if not batch:
            return
        epoch_before = self.leader_epoch
        applied = await self._apply(batch)
        if self.on_applied is not None:
            self.on_applied(self.partition, self.applied_lsn)
        if applied.actions and self.on_actions is not None:
            self.on_actions(self.partition, applied.actions)
        if applied.leader_epoch != epoch_before and self.on_announced is not None:
            self.on_announced(self.partition, applied.leader_epoch)
        self._release_waiters()

    async def _apply(self, batch: list[LogEntry]) -> _Applied:
        started = time.perf_counter()
        txn = Transaction(self.db)
        # time only moves with the records' own timestamps, so a replay sees the same clock
        ctx = Context(txn, self.partition, self.num_partitions, self.lookup_service, now=self.last_now)
        for lsn, record in batch:
            ctx.lsn = lsn
            apply(ctx, record)
        ctx.flush()
        leader_epoch = fsm.get_int(txn, self.partition, fsm.LEADER_EPOCH)  # a stale announce is not
        fsm.set_int(txn, self.partition, fsm.APPLIED_LSN, batch[-1][0])
        fsm.set_int(txn, self.partition, fsm.LAST_NOW, ctx.now)
        await self._commit(txn, batch)
        metrics.PARTITION_APPLY_COMMAND.observe(time.perf_counter() - started)
        self.applied_lsn = batch[-1][0]
        self.last_now = ctx.now
        self.leader_epoch = leader_epoch
        return _Applied(actions=ctx.actions, leader_epoch=leader_epoch)

    async def _commit(self, txn: Transaction, batch: list[LogEntry]) -> None:
        """Commit, retrying with backoff while the store refuses writes (a failed write keeps the batch)."""
        while True:
            try:
                txn.commit()
            except Exception as exc:  # rocksdict raises plain Exception("IO error: ...")
                self.commit_failures += 1
                delay = min(COMMIT_RETRY_INITIAL * 2 ** (self.commit_failures - 1), COMMIT_RETRY_MAX)
                log.warning(
                    "partition %d: committing LSNs %d..%d to the partition store failed (%s);"
                    " retrying in %.2fs (attempt %d)",
                    self.partition,
                    batch[0][0],
                    batch[-1][0],
                    exc,
                    delay,
                    self.commit_failures,
                )
                await asyncio.sleep(delay)
                continue
            if self.commit_failures:
                log.info(
                    "partition %d: the partition store accepts writes again after %d failed commits",
                    self.partition,
                    self.commit_failures,
                )
                self.commit_failures = 0
            return

    async def wait_applied(self, lsn: int) -> None:
        if lsn <= self.applied_lsn:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (lsn, next(self._counter), future))
        await future

    def _release_waiters(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.applied_lsn:
            _lsn, _n, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
