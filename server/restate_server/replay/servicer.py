"""`restate.replay.v1.StateReplay`: an object's state history as a stream, read as the client consumes it.

The servicer pages through the history (`PAGE` events per store read) between yields; grpc.aio only
asks for the next event once the previous one is on its way within the client's HTTP/2 window, so
flow control is the backpressure: a slow client slows the reads, a stalled one stops them, and a
cancelled call closes the generator and nothing more is read. Memory per stream is one page.

The stream is the history as it was when the call started (its newest event then is the last one
sent), so a busy object cannot keep a replay going forever. If retention removes events the stream
has not sent yet, the call ends with OUT_OF_RANGE instead of skipping them.

On a cluster node the object's partition may be led elsewhere: the call is then relayed to the
leader's node port (`leader_elsewhere`), event by event, with its status passed through; the
leader's store is the one that holds every committed change.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Protocol

import grpc

from restate_server.ids import partition_key_for, partition_of
from restate_server.node_services import grpc_target
from restate_server.observability import metrics
from restate_server.replay import replay_pb2 as pb, replay_pb2_grpc
from restate_server.replay.source import HistorySource, ObjectRef
from restate_server.replay.values import to_message
from restate_server.schema import model
from restate_server.storage.state_history import Position

log = logging.getLogger(__name__)

PAGE = 128
"""Events per read from the store: big enough to amortise a seek, small enough to hold no memory."""

_LAST = (1 << 64) - 1

Context = grpc.aio.ServicerContext[pb.ReplayRequest, pb.ReplayEvent]


class Services(Protocol):
    """Looks services up by name (`schema.registry.SchemaRegistry` does)."""

    def service(self, name: str) -> model.Service | None: ...


LeaderElsewhere = Callable[[int], str | None]
"""Partition -> the node-port address of its leader when that is another node, else None."""


class ReplayServicer(replay_pb2_grpc.StateReplayServicer):
    def __init__(
        self,
        *,
        services: Services,
        source: HistorySource,
        num_partitions: int,
        leader_elsewhere: LeaderElsewhere = lambda _partition: None,
    ) -> None:
        self._services = services
        self._source = source
        self._num_partitions = num_partitions
        self.leader_elsewhere = leader_elsewhere

    def register(self, server: grpc.aio.Server) -> None:
        """Add this servicer to the node's gRPC server (a `node_services.Registration`)."""
        replay_pb2_grpc.add_StateReplayServicer_to_server(self, server)

    async def Replay(self, request: pb.ReplayRequest, context: Context) -> AsyncIterator[pb.ReplayEvent]:
        ref = await self._object(request, context)
        leader = self.leader_elsewhere(ref.partition)
        if leader is not None:
            async with contextlib.aclosing(_relayed(leader, request, context)) as relayed:
                async for forwarded in relayed:
                    yield forwarded
            return
        start = request.start_ts if request.HasField("start_ts") else None
        end = request.end_ts if request.HasField("end_ts") else _LAST
        if start is not None and start > end:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"start_ts {start} is after end_ts {end}")
        window = await self._source.window(ref)
        if start is not None and window.trimmed_through is not None and start <= window.trimmed_through:
            await self._trimmed(ref, window.trimmed_through, context)
        if window.newest is None:
            return
        last = min(window.newest, (end, _LAST))
        first: Position = (start or 0, 0)
        metrics.REPLAY_STREAMS.inc()
        try:
            while True:
                page = await self._source.page(ref, first=first, last=last, limit=PAGE)
                metrics.REPLAY_EVENTS_READ.inc(len(page))
                for event in page:
                    yield to_message(event)
                if len(page) < PAGE:
                    return
                first = (page[-1].commit_ts, page[-1].lsn + 1)
                trimmed = (await self._source.window(ref)).trimmed_through
                if trimmed is not None and trimmed >= first[0]:
                    await self._trimmed(ref, trimmed, context)
        finally:
            metrics.REPLAY_STREAMS.dec()

    async def _object(self, request: pb.ReplayRequest, context: Context) -> ObjectRef:
        service = self._services.service(request.namespace)
        if service is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"service '{request.namespace}' not found")
        elif service.ty is model.ServiceType.SERVICE:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"service '{request.namespace}' has no keys: only virtual objects and workflows have state",
            )
        partition = partition_of(partition_key_for(request.agent_id), self._num_partitions)
        return ObjectRef(partition=partition, service=request.namespace, key=request.agent_id)

    async def _trimmed(self, ref: ObjectRef, trimmed_through: int, context: Context) -> None:
        oldest = await self._source.page(ref, first=(trimmed_through + 1, 0), last=(_LAST, _LAST), limit=1)
        available = oldest[0].commit_ts if oldest else trimmed_through + 1
        await context.abort(
            grpc.StatusCode.OUT_OF_RANGE,
            f"the state history of {ref.service}/{ref.key} is trimmed up to {trimmed_through};"
            f" the oldest available timestamp is {available}",
        )


async def _relayed(
    address: str, request: pb.ReplayRequest, context: Context
) -> AsyncGenerator[pb.ReplayEvent, None]:
    """The same call made to the node at `address`; its events and its final status are ours."""
    async with grpc.aio.insecure_channel(grpc_target(address)) as channel:
        call = replay_pb2_grpc.StateReplayStub(channel).Replay(request)
        try:
            async for event in call:
                yield event
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), exc.details() or "")
        finally:
            call.cancel()  # the client went away (or the stream ended): stop the leader's reads
