"""The worker's narrow interface for the ingress and the admin API.

They never touch the partition store's write path: they append records to the right partition's
log and wait for the processor's verdict (`SubmitOutcome`) or for an invocation to complete.
Reads of committed rows (an invocation's status for attach/output) go straight to the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from restate_server.ids import InvocationId, partition_of
from restate_server.log.api import LogProvider
from restate_server.log.records import Record
from restate_server.rocksdb import Database
from restate_server.storage import status
from restate_server.storage.status import InvocationStatus
from restate_server.storage.transaction import Transaction
from restate_server.worker import actions as act
from restate_server.worker.waiters import Waiters


class WorkerHandle:
    def __init__(
        self,
        *,
        db: Database,
        log_provider: LogProvider,
        waiters: Waiters,
        num_partitions: int,
        sequencer_epoch: Callable[[int], int],
    ) -> None:
        self.db = db
        self.log = log_provider
        self.sequencer_epoch = sequencer_epoch  # partition -> the epoch its log was acquired with
        self.waiters = waiters
        self.num_partitions = num_partitions

    def partition_for(self, partition_key: int) -> int:
        return partition_of(partition_key, self.num_partitions)

    async def submit(self, partition_key: int, record: Record) -> act.SubmitOutcome:
        """Append a record that carries `submit_request` and wait for the processor's outcome."""
        request_id, future = self.waiters.new_submit()
        record.submit_request = request_id  # type: ignore[attr-defined]
        try:
            partition = self.partition_for(partition_key)
            await self.log.submit(partition, [record], self.sequencer_epoch(partition))
            return await future
        finally:
            self.waiters.drop_submit(request_id)

    def append(self, partition: int, records: Sequence[Record]) -> asyncio.Future[int]:
        """Append records that need no verdict (deduplicated ingestion); resolves once durable.

        The log position is taken at call time, so calls made in order land in the log in order.
        """
        return self.log.submit(partition, records, self.sequencer_epoch(partition))

    def wait_completion(self, invocation_id: bytes) -> asyncio.Future[act.InvocationCompleted]:
        return self.waiters.wait_completion(invocation_id)

    def drop_completion(self, invocation_id: bytes, future: asyncio.Future[act.InvocationCompleted]) -> None:
        self.waiters.drop_completion(invocation_id, future)

    def read_status(self, invocation_id: InvocationId) -> InvocationStatus | None:
        partition = self.partition_for(invocation_id.partition_key)
        return status.get(Transaction(self.db), partition, invocation_id.to_bytes())
