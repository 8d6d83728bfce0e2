"""The control services `restatectl` calls, served by every node on its node port.

`NodeCtlSvc` says who the node is (`GetIdent`: id, generation, roles, the versions of the cluster's
documents) and hands out those documents (`GetMetadata`: nodes configuration, partition table, logs;
`documents`). `ClusterCtrlSvc` reports the cluster's state (`state`), lists the logs, finds a log's tail
and snapshots a partition on request. Any node answers any call, as upstream's admin nodes do: a
snapshot is taken by the partition's leader, asked over the node port (`peer.proto`) when that is
another node. A single node and a cluster node answer from the same code; `topology` is where they
differ. `ControlServices.start` registers the node (`registry`) before its node port serves anything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

import grpc
from google.protobuf import empty_pb2

from restate_server.cluster.ctl import (
    cluster_ctrl_svc_pb2 as ctrl,
    cluster_state_pb2 as cs,
    common_pb2 as common,
    documents,
    node_ctl_svc_pb2 as nodectl,
    peer_pb2_grpc,
    registry,
    state,
    topology,
    wire,
)
from restate_server.cluster.ctl.documents import LogSegment, Node
from restate_server.cluster.ctl.wire import GrpcError
from restate_server.config import Config
from restate_server.log.api import LogProvider
from restate_server.metadata.api import MetadataStore
from restate_server.node_services import grpc_target
from restate_server.schema.registry import SchemaRegistry
from restate_server.storage.snapshots import durability
from restate_server.web import proxy
from restate_server.web.serving import Sniff
from restate_server.worker.leadership.leadership import Leadership
from restate_server.worker.processor import PartitionProcessor
from restate_server.worker.snapshotter import SnapshotScheduler

log = logging.getLogger(__name__)

SNAPSHOT_TIMEOUT = 300.0
"""Seconds a partition's leader may take to snapshot it when asked by another node."""

_NODE_CTL = "/restate.node_ctl_svc.NodeCtlSvc/"
_CLUSTER_CTRL = "/restate.cluster_ctrl.ClusterCtrlSvc/"


def _snapshot_error(partition: int, kind: str) -> GrpcError:
    """A failed snapshot as upstream reports it to `restatectl` (its controller's message)."""
    return GrpcError(
        wire.INTERNAL,
        f"Failed to create snapshot: SnapshotError {{ partition_id: PartitionId({partition}), kind: {kind} }}",
    )


class ControlServices:
    """This node's control services: `start`, then `register` (grpcio) and `sniff` (node port)."""

    def __init__(
        self,
        *,
        config: Config,
        metadata: MetadataStore,
        topology: topology.Topology,
        log_provider: LogProvider,
        processors: Mapping[int, PartitionProcessor],
        leadership: Leadership,
        snapshotter: SnapshotScheduler | None,
        schema: SchemaRegistry,
        ready: Callable[[], bool],
        stopping: Callable[[], bool],
        running: Callable[[int], bool],
        started_at: int,
    ) -> None:
        self._config = config
        self._metadata = metadata
        self._topology = topology
        self._log = log_provider
        self._processors = processors
        self._leadership = leadership
        self._snapshotter = snapshotter
        self._schema = schema
        self._ready = ready
        self._stopping = stopping
        self._started_at = started_at
        self._local = state.LocalPartitions(
            processors=processors,
            leadership=leadership,
            running=running,
            snapshotter=snapshotter,
            topology=topology,
            started_at=started_at,
        )
        self._me: Node | None = None
        self._connections: set[wire.GrpcConnection] = set()
        self._methods: dict[str, wire.Unary] = {
            _NODE_CTL + "GetIdent": wire.unary(empty_pb2.Empty, self.get_ident),
            _NODE_CTL + "GetMetadata": wire.unary(nodectl.GetMetadataRequest, self.get_metadata),
            _NODE_CTL + "ClusterHealth": wire.unary(empty_pb2.Empty, self.cluster_health),
            _CLUSTER_CTRL + "GetClusterState": wire.unary(ctrl.ClusterStateRequest, self.get_cluster_state),
            _CLUSTER_CTRL + "ListLogs": wire.unary(ctrl.ListLogsRequest, self.list_logs),
            _CLUSTER_CTRL + "FindTail": wire.unary(ctrl.FindTailRequest, self.find_tail),
            _CLUSTER_CTRL + "CreatePartitionSnapshot": wire.unary(
                ctrl.CreatePartitionSnapshotRequest, self.create_partition_snapshot
            ),
        }

    # ---- life cycle
    async def start(self) -> None:
        """Register this node (a new generation of its id); before the node port serves."""
        self._me = await registry.register(
            self._metadata,
            name=self._config.node_name,
            address=self._config.advertised_address,
            roles=self._topology.roles,
        )
        log.info("node %s is %s in the nodes configuration", self._config.node_name, self._me.node_id)

    def register(self, server: grpc.aio.Server) -> None:
        """Add the node-to-node half (`peer.proto`) to the node's grpcio server."""
        peer_pb2_grpc.add_NodeStateServicer_to_server(_PeerServicer(self), server)

    def sniff(self, fallback: Sniff) -> Sniff:
        """The node port's sniffer: HTTP/2 connections calling control services come here, the rest
        go where `fallback` sends them (the grpcio server)."""

        def choose(path: str, opening: bytes) -> asyncio.Protocol | None:
            if not path.startswith(wire.CONTROL_SERVICES):
                return fallback(opening)
            connection = wire.GrpcConnection(self._methods, self._connections.discard)
            self._connections.add(connection)
            return connection

        def sniff(first: bytes) -> asyncio.Protocol | None:
            return wire.Router(choose) if proxy.is_h2_preface(first) else None

        return sniff

    def stop(self) -> None:
        for connection in list(self._connections):
            connection.close()

    @property
    def me(self) -> Node:
        if self._me is None:
            raise GrpcError(wire.UNAVAILABLE, "the node is starting")
        return self._me

    async def metadata_members(self) -> list[int] | None:
        """The node ids of the embedded metadata cluster; None when the metadata is elsewhere (etcd)."""
        return [self.me.node_id.id] if self._topology.metadata_member else None

    # ---- NodeCtlSvc
    async def get_ident(self, _request: empty_pb2.Empty) -> nodectl.IdentResponse:
        me = self.me
        nodes, table, chains = await self._documents()
        ready = self._ready()
        # alive while it serves (a node moving partitions is alive); its worker is ready once every
        # partition it holds runs (what /health says)
        return nodectl.IdentResponse(
            status=common.SHUTTING_DOWN if self._stopping() else common.ALIVE,
            node_id=state.node_id(me),
            cluster_name=self._config.cluster_name,
            roles=list(me.roles),
            age_s=max(0, int(time.time() - self._started_at / 1000)),
            admin_status=common.AdminStatus_READY,
            worker_status=common.WorkerStatus_READY if ready else common.WorkerStatus_STARTING_UP,
            metadata_server_status=(
                common.MetadataServerStatus_MEMBER
                if self._topology.metadata_member
                else common.MetadataServerStatus_UNKNOWN
            ),
            nodes_config_version=nodes.version,
            logs_version=chains.version,
            schema_version=self._schema.version,
            partition_table_version=table.version,
        )

    async def get_metadata(self, request: nodectl.GetMetadataRequest) -> nodectl.GetMetadataResponse:
        match request.kind:
            case common.NODES_CONFIGURATION:
                document = self._nodes_configuration(await registry.load(self._metadata))
            case common.PARTITION_TABLE:
                table = await self._topology.table()
                document = documents.partition_table(
                    version=table.version, num_partitions=len(table.placements), replication=table.replication
                )
            case common.LOGS:
                document = await self._logs_document()
            case _:
                raise GrpcError(
                    wire.UNIMPLEMENTED, f"metadata kind {request.kind} is not served by this node"
                )
        return nodectl.GetMetadataResponse(encoded=documents.encode(document))

    async def cluster_health(self, _request: empty_pb2.Empty) -> nodectl.ClusterHealthResponse:
        response = nodectl.ClusterHealthResponse(cluster_name=self._config.cluster_name)
        members = await self.metadata_members()
        if members is not None:
            response.metadata_cluster_health.members.extend(common.NodeId(id=m) for m in members)
        return response

    # ---- ClusterCtrlSvc
    async def get_cluster_state(self, _request: ctrl.ClusterStateRequest) -> ctrl.ClusterStateResponse:
        return ctrl.ClusterStateResponse(cluster_state=await self.cluster_state())

    async def cluster_state(self) -> cs.ClusterState:
        nodes, table, chains = await self._documents()
        return await state.gather(
            me=self.me,
            local=self._local,
            nodes=nodes,
            table=table,
            live=self._topology.live(),
            logs_version=chains.version,
        )

    async def local_partitions(self) -> cs.AliveNode:
        nodes = await registry.load(self._metadata)
        return await self._local.alive(self.me, await self._topology.table(), nodes)

    async def list_logs(self, _request: ctrl.ListLogsRequest) -> ctrl.ListLogsResponse:
        return ctrl.ListLogsResponse(logs=documents.encode(await self._logs_document()))

    async def find_tail(self, request: ctrl.FindTailRequest) -> ctrl.FindTailResponse:
        chains = await self._topology.chains()
        chain = chains.chains.get(request.log_id)
        if chain is None:
            raise GrpcError(wire.NOT_FOUND, f"Log id {request.log_id} not found")
        tail = await self._log.find_tail(request.log_id)
        return ctrl.FindTailResponse(
            log_id=request.log_id,
            segment_index=len(chain.segments) - 1,
            tail_state=ctrl.SEALED if tail.sealed else ctrl.OPEN,
            tail_lsn=tail.next_lsn,
        )

    async def create_partition_snapshot(
        self, request: ctrl.CreatePartitionSnapshotRequest
    ) -> ctrl.CreatePartitionSnapshotResponse:
        """Snapshot on the partition's leader (here, or asked over the node port)."""
        partition = request.partition_id
        table = await self._topology.table()
        if partition >= len(table.placements):
            raise GrpcError(wire.INVALID_ARGUMENT, f"Invalid partition id: {partition}")
        leader_name = table.placements[partition].leader
        if leader_name == self.me.name:
            return await self.snapshot_here(request)
        nodes = await registry.load(self._metadata)
        leader = None if leader_name is None else nodes.by_name(leader_name)
        if leader is None or leader.name not in self._topology.live():
            raise GrpcError(
                wire.INTERNAL, f"Can not find a suitable node to take snapshot of partition {partition}"
            )
        try:
            async with grpc.aio.insecure_channel(grpc_target(leader.address)) as channel:
                stub = peer_pb2_grpc.NodeStateStub(channel)
                return await stub.CreateSnapshot(request, timeout=SNAPSHOT_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise GrpcError(exc.code().value[0], exc.details() or str(exc.code())) from None

    async def snapshot_here(
        self, request: ctrl.CreatePartitionSnapshotRequest
    ) -> ctrl.CreatePartitionSnapshotResponse:
        partition = request.partition_id
        processor = self._processors.get(partition)
        if processor is None:
            raise _snapshot_error(partition, "PartitionNotFound")
        if self._snapshotter is None:
            raise _snapshot_error(partition, "RepositoryNotConfigured")
        target = request.min_target_lsn if request.HasField("min_target_lsn") else None
        if target is not None and processor.applied_lsn < target:
            raise GrpcError(
                wire.INTERNAL,
                f"Failed to create snapshot: Applied LSN below the target LSN: {processor.applied_lsn} < {target}",
            )
        try:
            snapshot = await self._snapshotter.create_now(partition)
        except Exception as exc:  # the object store or the disk failed (the scheduler logged it)
            raise GrpcError(wire.INTERNAL, f"Failed to create snapshot: {exc}") from None
        if request.trim_log:
            await self._trim(partition, snapshot.applied_lsn)
        return ctrl.CreatePartitionSnapshotResponse(
            snapshot_id=snapshot.snapshot_id, log_id=partition, min_applied_lsn=snapshot.applied_lsn
        )

    async def _trim(self, partition: int, snapshot_lsn: int) -> None:
        """Trim the log towards the snapshot: no further than every replica has made durable."""
        point = durability.trim_point(
            durable_lsns=await self._topology.durable_lsns(partition),
            archived_lsn=snapshot_lsn,
            snapshots_enabled=True,
        )
        if point > 0:
            trimmed = await self._log.trim(partition, point)
            log.info("partition %d: log trimmed to LSN %d after a requested snapshot", partition, trimmed)

    # ---- documents
    async def _documents(self) -> tuple[registry.NodesConfig, topology.Table, topology.Chains]:
        nodes, table, chains = await asyncio.gather(
            registry.load(self._metadata), self._topology.table(), self._topology.chains()
        )
        return nodes, table, chains

    def _nodes_configuration(self, nodes: registry.NodesConfig) -> dict[str, object]:
        return documents.nodes_configuration(
            version=nodes.version,
            cluster_name=self._config.cluster_name,
            fingerprint=nodes.fingerprint,
            nodes=nodes.nodes,
            metadata_members=self._topology.metadata_member,
        )

    async def _logs_document(self) -> dict[str, object]:
        nodes, table, chains = await self._documents()
        replication = self._topology.log_replication
        listed: dict[int, list[LogSegment]] = {}
        for log_id, chain in chains.chains.items():
            placement = table.placements[log_id] if log_id < len(table.placements) else None
            leader = (
                None if placement is None or placement.leader is None else nodes.by_name(placement.leader)
            )
            segments = [
                LogSegment(
                    base_lsn=segment.base_lsn,
                    kind=topology.PROVIDER_KINDS[segment.provider],
                    # the sequencer of the writable segment is the partition's leader; older ones are history
                    sequencer=leader.node_id if leader is not None and segment is chain.last else None,
                    replication=replication or 1,
                )
                for segment in chain.segments
            ]
            if chain.last.sealed_tail is not None:
                segments.append(LogSegment(base_lsn=chain.last.sealed_tail, kind=documents.SEALED))
            listed[log_id] = segments
        return documents.logs(version=chains.version, chains=listed, replication=replication)


class _PeerServicer(peer_pb2_grpc.NodeStateServicer):
    """What other nodes ask of this one (`peer.proto`), over the node's grpcio server."""

    def __init__(self, services: ControlServices) -> None:
        self._services = services

    async def Local(
        self, request: empty_pb2.Empty, context: grpc.aio.ServicerContext[object, object]
    ) -> cs.AliveNode:
        try:
            return await self._services.local_partitions()
        except GrpcError as exc:
            await context.abort(_status(exc.code), exc.message)

    async def CreateSnapshot(
        self, request: ctrl.CreatePartitionSnapshotRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> ctrl.CreatePartitionSnapshotResponse:
        try:
            return await self._services.snapshot_here(request)
        except GrpcError as exc:
            await context.abort(_status(exc.code), exc.message)


def _status(code: int) -> grpc.StatusCode:
    return next((status for status in grpc.StatusCode if status.value[0] == code), grpc.StatusCode.UNKNOWN)
