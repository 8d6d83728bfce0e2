"""The worker interface of a cluster node: local when this node leads the partition, forwarded otherwise.

`ClusterWorker` is a `WorkerHandle` (what the ingress, the admin API and Kafka ingestion use) whose
every call first asks `Routing` who leads the partition. Forwarded calls retry against the leader the
table names until `FORWARD_DEADLINE`; retrying is safe because what is forwarded is idempotent by
construction (an `Invoke` carries its invocation id, a redelivered signal or state edit is detected by
the state machine, appends carry dedup sequences). Appends to one partition keep their call order:
they are sent in one batch at a time per partition (`_Forwarder`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from restate_server.cluster import codec, rpc
from restate_server.cluster.routing import Routing
from restate_server.ids import InvocationId
from restate_server.log.records import Record, encode
from restate_server.rocksdb import Database
from restate_server.storage.status import InvocationStatus
from restate_server.worker import actions as act
from restate_server.worker.api import Appender, WorkerHandle
from restate_server.worker.errors import WorkerUnavailable
from restate_server.worker.waiters import Waiters

log = logging.getLogger(__name__)

FORWARD_DEADLINE = 30.0  # seconds a request waits for its partition to have a reachable leader
T = TypeVar("T")


class ClusterWorker(WorkerHandle):
    def __init__(
        self,
        *,
        routing: Routing,
        peers: rpc.Peers,
        db: Database,
        appender: Appender,
        waiters: Waiters,
        num_partitions: int,
        ready: Callable[[], bool],
    ) -> None:
        super().__init__(
            db=db, appender=appender, waiters=waiters, num_partitions=num_partitions, ready=ready
        )
        self.routing = routing
        self.peers = peers
        self._forwarders: dict[int, _Forwarder] = {}
        self._remote_waits: dict[asyncio.Future[act.InvocationCompleted], asyncio.Task[None]] = {}

    async def submit_to(self, partition: int, record: Record) -> act.SubmitOutcome:
        deadline = time.monotonic() + FORWARD_DEADLINE
        attempt = 0
        while True:
            if self.routing.leads(partition):
                try:
                    return await super().submit_to(partition, record)
                except WorkerUnavailable:
                    pass  # leadership moved between the check and the append: route again
            else:
                address = self.routing.leader_address(partition)
                if address is not None:
                    try:
                        data = await self.peers.submit(address, partition, encode(record))
                        return codec.decode_outcome(data)
                    except Exception as exc:
                        if not rpc.retryable(exc):
                            raise
            attempt = await _wait_for_route(self.routing, partition, deadline, attempt)

    def append(self, partition: int, records: Sequence[Record]) -> asyncio.Future[int]:
        forwarder = self._forwarders.get(partition)
        if forwarder is None:
            forwarder = self._forwarders[partition] = _Forwarder(self, partition)
        return forwarder.add(records)

    def _append_local(self, partition: int, records: Sequence[Record]) -> asyncio.Future[int]:
        return super().append(partition, records)

    def wait_completion(self, invocation_id: bytes) -> asyncio.Future[act.InvocationCompleted]:
        partition = self.partition_for(InvocationId.from_bytes(invocation_id).partition_key)
        future: asyncio.Future[act.InvocationCompleted] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._await_completion(partition, invocation_id, future))
        self._remote_waits[future] = task
        return future

    def drop_completion(self, invocation_id: bytes, future: asyncio.Future[act.InvocationCompleted]) -> None:
        task = self._remote_waits.pop(future, None)
        if task is not None:
            task.cancel()

    async def _await_completion(
        self, partition: int, invocation_id: bytes, future: asyncio.Future[act.InvocationCompleted]
    ) -> None:
        """Wait where the partition is led; when leadership moves, wait at the new leader."""
        attempt = 0
        try:
            while not future.done():
                if self.routing.leads(partition):
                    local = self.waiters.wait_completion(partition, invocation_id)
                    try:
                        st = await super().read_status(InvocationId.from_bytes(invocation_id))
                        if st is not None and st.result is not None and st.completed_at is not None:
                            future.set_result(codec.completion_of(invocation_id, st))
                        else:
                            future.set_result(await local)
                        return
                    except WorkerUnavailable:
                        pass
                    finally:
                        self.waiters.drop_completion(invocation_id, local)
                else:
                    address = self.routing.leader_address(partition)
                    if address is not None:
                        try:
                            data = await self.peers.wait_completion(address, partition, invocation_id)
                            future.set_result(codec.decode_completion(data))
                            return
                        except Exception as exc:
                            if not rpc.retryable(exc):
                                raise
                # no deadline: a waiting call lasts as long as its invocation, whoever leads it
                attempt = await _wait_for_route(self.routing, partition, None, attempt)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        finally:
            self._remote_waits.pop(future, None)

    async def read_status(self, invocation_id: InvocationId) -> InvocationStatus | None:
        partition = self.partition_for(invocation_id.partition_key)
        deadline = time.monotonic() + FORWARD_DEADLINE
        attempt = 0
        while True:
            if self.routing.leads(partition):
                return await super().read_status(invocation_id)
            address = self.routing.leader_address(partition)
            if address is not None:
                try:
                    data = await self.peers.read_status(address, partition, invocation_id.to_bytes())
                    return rpc.status_of(data)
                except Exception as exc:
                    if not rpc.retryable(exc):
                        raise
            attempt = await _wait_for_route(self.routing, partition, deadline, attempt)

    async def close(self) -> None:
        for task in list(self._remote_waits.values()):
            task.cancel()
        for forwarder in self._forwarders.values():
            forwarder.close()


async def _wait_for_route(routing: Routing, partition: int, deadline: float | None, attempt: int) -> int:
    """Back off until routing changes (or a short timeout); raise once past the deadline."""
    if deadline is not None and time.monotonic() > deadline:
        raise WorkerUnavailable(f"partition {partition} has no reachable leader; retry")
    await routing.wait_change(min(0.05 * 2**attempt, 1.0))
    return attempt + 1


class _Forwarder:
    """Appends to one partition, in call order: one batch on the way at a time, the rest queued."""

    def __init__(self, worker: ClusterWorker, partition: int) -> None:
        self.worker = worker
        self.partition = partition
        self.queue: list[tuple[Sequence[Record], asyncio.Future[int]]] = []
        self.task: asyncio.Task[None] | None = None

    def add(self, records: Sequence[Record]) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.queue.append((records, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name=f"forward-{self.partition}")
        return future

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        while self.queue:
            batch, self.queue = self.queue, []
            records = [r for records, _ in batch for r in records]
            try:
                last = await self._send(records)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            # each caller gets the LSN of its own last record, counted back from the batch's last
            remaining = len(records)
            for records_of, future in batch:
                remaining -= len(records_of)
                if not future.done():
                    future.set_result(last - remaining)

    async def _send(self, records: list[Record]) -> int:
        deadline = time.monotonic() + FORWARD_DEADLINE
        attempt = 0
        partition = self.partition
        routing = self.worker.routing
        while True:
            if routing.leads(partition):
                try:
                    return await self.worker._append_local(partition, records)
                except WorkerUnavailable:
                    pass
            else:
                address = routing.leader_address(partition)
                if address is not None:
                    try:
                        encoded = [encode(r) for r in records]
                        return await self.worker.peers.append(address, partition, encoded)
                    except Exception as exc:
                        if not rpc.retryable(exc):
                            raise
            attempt = await _wait_for_route(routing, partition, deadline, attempt)
