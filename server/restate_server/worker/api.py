"""The worker's narrow interface for the ingress and the admin API.

They never touch the partition store's write path: they append records to the right partition's
log (through the partition's leadership, which knows the epoch to append with) and wait for the
processor's verdict (`SubmitOutcome`) or for an invocation to complete. Reads of committed rows (an
invocation's status for attach/output) go straight to the store. Whatever keeps a request from
being taken is a :class:`WorkerUnavailable`, which both APIs answer with a 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

from restate_server.ids import InvocationId, partition_of
from restate_server.log.records import Record
from restate_server.rocksdb import Database
from restate_server.storage import status
from restate_server.storage.status import InvocationStatus
from restate_server.storage.transaction import Transaction
from restate_server.worker import actions as act
from restate_server.worker.errors import WorkerUnavailable as WorkerUnavailable
from restate_server.worker.waiters import Waiters


class Appender(Protocol):
    def append(self, partition: int, records: Sequence[Record]) -> asyncio.Future[int]:
        """Append records to the partition's log (position taken now); fails with :class:`WorkerUnavailable`."""
        ...


class WorkerHandle:
    def __init__(
        self,
        *,
        db: Database,
        appender: Appender,
        waiters: Waiters,
        num_partitions: int,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.db = db
        self.appender = appender
        self.waiters = waiters
        self.num_partitions = num_partitions
        self.ready = ready
        """Whether the node serves: every partition has a running processor and it is not stopping."""

    def partition_for(self, partition_key: int) -> int:
        return partition_of(partition_key, self.num_partitions)

    async def submit(self, partition_key: int, record: Record) -> act.SubmitOutcome:
        """Append a record that carries `submit_request` and wait for the processor's outcome."""
        return await self.submit_to(self.partition_for(partition_key), record)

    async def submit_to(self, partition: int, record: Record) -> act.SubmitOutcome:
        """`submit` to a partition by number (a request another node forwarded)."""
        request_id, future = self.waiters.new_submit(partition)
        record.submit_request = request_id  # type: ignore[attr-defined]
        try:
            await self.appender.append(partition, [record])
            return await future
        finally:
            self.waiters.drop_submit(request_id)
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                # failed by a step-down while the append was pending: the append's error is what
                # the caller sees; marking this one retrieved keeps asyncio from logging it as lost
                future.exception()

    def append(self, partition: int, records: Sequence[Record]) -> asyncio.Future[int]:
        """Append records that need no verdict (deduplicated ingestion); resolves once durable.

        The log position is taken at call time, so calls made in order land in the log in order.
        Fails with :class:`WorkerUnavailable` only.
        """
        return self.appender.append(partition, records)

    def wait_completion(self, invocation_id: bytes) -> asyncio.Future[act.InvocationCompleted]:
        partition = self.partition_for(InvocationId.from_bytes(invocation_id).partition_key)
        return self.waiters.wait_completion(partition, invocation_id)

    def drop_completion(self, invocation_id: bytes, future: asyncio.Future[act.InvocationCompleted]) -> None:
        self.waiters.drop_completion(invocation_id, future)

    async def read_status(self, invocation_id: InvocationId) -> InvocationStatus | None:
        """The invocation's committed status row (a cluster reads it where the partition is led)."""
        partition = self.partition_for(invocation_id.partition_key)
        return status.get(Transaction(self.db), partition, invocation_id.to_bytes())
