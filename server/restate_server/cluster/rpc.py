"""Node-to-node calls: a request that reaches a node which does not lead its partition goes to the leader.

The server half (`WorkerServicer`) runs on every node and only serves partitions the node leads; it
answers UNAVAILABLE otherwise, and the caller looks the leader up again. The client half (`Peers`)
keeps one gRPC channel per peer node. Records travel in the log's own encoding, answers in
`cluster.codec`'s, so what a leader appends for a forwarded request is exactly what it would have built
for a request of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import grpc

from restate_server.cluster import cluster_pb2 as pb, cluster_pb2_grpc as pb_grpc, codec
from restate_server.ids import InvocationId
from restate_server.log.records import decode
from restate_server.node_services import grpc_target
from restate_server.storage.status import InvocationStatus, Status
from restate_server.worker.api import WorkerHandle
from restate_server.worker.errors import WorkerUnavailable

if TYPE_CHECKING:  # pyarrow and the query engine are loaded by the first scan, not at start-up
    from restate_server.admin.query import tables

CALL_TIMEOUT = 10.0  # seconds one forwarded call may take (appends wait for etcd's fsync)
SCAN_TIMEOUT = 60.0  # seconds a peer may take to scan its partitions for a query
Leads = Callable[[int], bool]
"""Whether this node leads a partition now (announced and applied)."""


class WorkerServicer(pb_grpc.WorkerServicer):
    """Serves requests forwarded by other nodes, for the partitions this node leads."""

    def __init__(
        self, worker: WorkerHandle, leads: Leads, scan_sources: Callable[[], tables.Sources]
    ) -> None:
        self.worker = worker
        self.leads = leads
        self.scan_sources = scan_sources

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_WorkerServicer_to_server(self, server)

    async def _check(self, partition: int, context: grpc.aio.ServicerContext[object, object]) -> None:
        if not self.leads(partition):
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"partition {partition} is not led here")

    async def Submit(
        self, request: pb.SubmitRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.Encoded:
        await self._check(request.partition, context)
        try:
            outcome = await self.worker.submit_to(request.partition, decode(request.record))
        except WorkerUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return pb.Encoded(data=codec.encode_outcome(outcome))

    async def Append(
        self, request: pb.AppendRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.AppendResponse:
        await self._check(request.partition, context)
        try:
            lsn = await self.worker.append(request.partition, [decode(r) for r in request.records])
        except WorkerUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return pb.AppendResponse(last_lsn=lsn)

    async def WaitCompletion(
        self, request: pb.InvocationRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.Encoded:
        await self._check(request.partition, context)
        waiter = self.worker.wait_completion(request.invocation_id)
        try:
            st = await self.worker.read_status(InvocationId.from_bytes(request.invocation_id))
            if st is not None and st.status == Status.COMPLETED and st.result is not None:
                done = codec.completion_of(request.invocation_id, st)
            else:
                done = await waiter
        except WorkerUnavailable as exc:  # the partition's leadership moved: ask the new leader
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        finally:
            self.worker.drop_completion(request.invocation_id, waiter)
        return pb.Encoded(data=codec.encode_completion(done))

    async def ReadStatus(
        self, request: pb.InvocationRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.Encoded:
        await self._check(request.partition, context)
        st = await self.worker.read_status(InvocationId.from_bytes(request.invocation_id))
        return pb.Encoded(data=b"" if st is None else st.encode())

    async def Scan(
        self, request: pb.ScanRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[pb.ScanChunk]:
        sources = dataclasses.replace(self.scan_sources(), remote=None)  # the partitions led here only
        from restate_server.admin.query import remote, scan as scans  # loaded with the query engine

        for wanted in request.tables:
            read = scans.Scan(
                ids=frozenset(wanted.only) if wanted.restricted else None,
                columns=frozenset(wanted.columns) if wanted.columns else None,
            )
            data = await asyncio.to_thread(remote.scan_local, sources, wanted.table, read)
            yield pb.ScanChunk(table=wanted.table, arrow_ipc=data)


class Peers:
    """One channel per peer node (its advertised node-port address)."""

    def __init__(self) -> None:
        self._stubs: dict[str, tuple[grpc.aio.Channel, pb_grpc.WorkerAsyncStub]] = {}

    def stub(self, address: str) -> pb_grpc.WorkerAsyncStub:
        found = self._stubs.get(address)
        if found is None:
            channel = grpc.aio.insecure_channel(grpc_target(address))
            found = self._stubs[address] = (channel, pb_grpc.WorkerStub(channel))
        return found[1]

    async def close(self) -> None:
        channels = [channel for channel, _ in self._stubs.values()]
        self._stubs.clear()
        for channel in channels:
            with contextlib.suppress(Exception):
                await channel.close()

    async def submit(self, address: str, partition: int, record_bytes: bytes) -> bytes:
        reply = await self.stub(address).Submit(
            pb.SubmitRequest(partition=partition, record=record_bytes), timeout=CALL_TIMEOUT
        )
        return reply.data

    async def append(self, address: str, partition: int, records: list[bytes]) -> int:
        reply = await self.stub(address).Append(
            pb.AppendRequest(partition=partition, records=records), timeout=CALL_TIMEOUT
        )
        return int(reply.last_lsn)

    async def wait_completion(self, address: str, partition: int, invocation_id: bytes) -> bytes:
        request = pb.InvocationRequest(partition=partition, invocation_id=invocation_id)
        reply = await self.stub(address).WaitCompletion(request)
        return reply.data

    async def scan(
        self, address: str, table: str, only: frozenset[bytes] | None, columns: frozenset[str] | None
    ) -> list[bytes]:
        request = pb.ScanRequest(
            tables=[
                pb.TableScan(
                    table=table,
                    columns=sorted(columns or ()),
                    only=sorted(only or ()),
                    restricted=only is not None,
                )
            ]
        )
        return [chunk.arrow_ipc async for chunk in self.stub(address).Scan(request, timeout=SCAN_TIMEOUT)]

    async def read_status(self, address: str, partition: int, invocation_id: bytes) -> bytes:
        request = pb.InvocationRequest(partition=partition, invocation_id=invocation_id)
        reply = await self.stub(address).ReadStatus(request, timeout=CALL_TIMEOUT)
        return reply.data


def status_of(data: bytes) -> InvocationStatus | None:
    return None if not data else InvocationStatus.decode(data)


def retryable(error: BaseException) -> bool:
    """A call that may succeed against the (possibly new) leader: no leader, unreachable, moved."""
    return isinstance(error, grpc.aio.AioRpcError) and error.code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
    )


async def sleep_backoff(attempt: int) -> None:
    await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
