"""What a node's `/metrics` reads at scrape time: its stores, partitions and invocation counts."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

from restate_server.log.api import LogProvider
from restate_server.observability import metrics, scrape
from restate_server.rocksdb import Database
from restate_server.storage import status as status_table
from restate_server.storage.transaction import Transaction
from restate_server.worker.leadership.leadership import Leadership
from restate_server.worker.processor import PartitionProcessor


class MeteredNode(Protocol):
    """The parts of a node its metrics read (`restate_server.node.Node`)."""

    db: Database
    log_db: Database
    log: LogProvider
    leadership: Leadership

    @property
    def clustered(self) -> bool: ...

    @property
    def processors(self) -> Mapping[int, PartitionProcessor]: ...


# the store's statuses, in `sys_invocation`'s words (`invoked` is split by the invoker's state)
_SYS_STATUS = {
    status_table.Status.INBOXED: "pending",
    status_table.Status.SCHEDULED: "scheduled",
    status_table.Status.SUSPENDED: "suspended",
    status_table.Status.PAUSED: "paused",
    status_table.Status.COMPLETED: "completed",
}


class NodeMetricsSources:
    """What `/metrics` reads from this node at scrape time."""

    def __init__(self, node: MeteredNode) -> None:
        self.node = node

    def databases(self) -> dict[str, scrape.Database]:
        found: dict[str, scrape.Database] = {metrics.DB_PARTITION_STORE: self.node.db}
        if not self.node.clustered:  # a cluster's log lives in etcd
            found[metrics.DB_LOG] = self.node.log_db
        return found

    async def partitions(self) -> list[scrape.PartitionView]:
        views = []
        for partition, processor in self.node.processors.items():
            tail = await self.node.log.find_tail(partition)
            views.append(
                scrape.PartitionView(
                    partition=partition,
                    applied_lsn=processor.applied_lsn,
                    tail_lsn=tail.next_lsn - 1,
                    leader=self.node.leadership.is_leader(partition),
                )
            )
        return views

    async def invocation_counts(self) -> dict[str, int]:
        # the partitions led here: in a cluster, followers' copies would count an invocation twice
        partitions = [p for p in self.node.processors if self.node.leadership.is_leader(p)]
        stored = await asyncio.to_thread(self._count, partitions)
        counts = {name: 0 for name in (*_SYS_STATUS.values(), "ready", "running", "backing-off")}
        for status, count in stored.items():
            if status in _SYS_STATUS:
                counts[_SYS_STATUS[status]] += count
        invoked = stored.get(status_table.Status.INVOKED, 0)
        attempts = list(self.node.leadership.invoker.invocations.values())
        counts["running"] = min(invoked, sum(1 for a in attempts if a.in_flight))
        counts["backing-off"] = min(
            invoked - counts["running"], sum(1 for a in attempts if not a.in_flight and a.attempts > 0)
        )
        counts["ready"] = invoked - counts["running"] - counts["backing-off"]
        return counts

    def _count(self, partitions: list[int]) -> dict[status_table.Status, int]:
        total: dict[status_table.Status, int] = {}
        for partition in partitions:
            for status, count in status_table.count_by_status(Transaction(self.node.db), partition).items():
                total[status] = total.get(status, 0) + count
        return total
