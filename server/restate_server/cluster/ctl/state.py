"""The cluster's state as upstream's cluster controller reports it: every node, and what each runs.

Each node describes its own partition processors (`LocalPartitions.alive`): the mode the table plans
for it and the one in effect (leading means announced and applied), the leader epoch and leader its
store last applied, its applied, durable and archived (snapshot) LSNs. The node answering `restatectl`
puts these together (`gather`): itself, every other live node over the node port (`peer.proto`), and
every other registered node as dead; a live node that does not answer in `PEER_TIMEOUT` is reported
dead too, as upstream's failure detector would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

import grpc
from google.protobuf import empty_pb2

from restate_server.cluster.ctl import (
    cluster_state_pb2 as cs,
    common_pb2 as common,
    peer_pb2_grpc,
    registry,
    topology,
)
from restate_server.cluster.ctl.documents import Node
from restate_server.node_services import grpc_target
from restate_server.worker.leadership.leadership import Leadership
from restate_server.worker.processor import PartitionProcessor
from restate_server.worker.snapshotter import SnapshotScheduler

log = logging.getLogger(__name__)

PEER_TIMEOUT = 2.0
"""Seconds a live node gets to describe its partitions before it is reported dead."""


def node_id(node: Node) -> common.NodeId:
    return common.NodeId(id=node.node_id.id, generation=node.node_id.generation)


class LocalPartitions:
    """This node's partition processors, as its `AliveNode` entry."""

    def __init__(
        self,
        *,
        processors: Mapping[int, PartitionProcessor],
        leadership: Leadership,
        running: Callable[[int], bool],
        snapshotter: SnapshotScheduler | None,
        topology: topology.Topology,
        started_at: int,
    ) -> None:
        self._processors = processors
        self._leadership = leadership
        self._running = running
        self._snapshotter = snapshotter
        self._topology = topology
        self._started_at = started_at

    async def alive(self, me: Node, table: topology.Table, nodes: registry.NodesConfig) -> cs.AliveNode:
        alive = cs.AliveNode(
            generational_node_id=common.GenerationalNodeId(
                id=me.node_id.id, generation=me.node_id.generation
            ),
            uptime_s=max(0, int(time.time() - self._started_at / 1000)),
        )
        alive.last_heartbeat_at.GetCurrentTime()
        for partition, processor in sorted(self._processors.items()):
            status = alive.partitions[partition]
            status.updated_at.GetCurrentTime()
            placement = table.placements[partition] if partition < len(table.placements) else None
            planned_leader = placement is not None and placement.leader == me.name
            status.planned_mode = cs.LEADER if planned_leader else cs.FOLLOWER
            if self._leadership.is_leader(partition):
                status.effective_mode, status.detailed_effective_mode = cs.LEADER, cs.DetailedRunMode_LEADER
            elif self._leadership.epoch(partition) is not None:  # acquired, announcement not applied yet
                status.effective_mode = cs.FOLLOWER
                status.detailed_effective_mode = cs.DetailedRunMode_BECOMING_LEADER
            else:
                status.effective_mode, status.detailed_effective_mode = (
                    cs.FOLLOWER,
                    cs.DetailedRunMode_FOLLOWER,
                )
            status.replay_status = cs.ACTIVE if self._running(partition) else cs.STARTING
            if processor.leader_epoch:
                status.last_observed_leader_epoch.value = processor.leader_epoch
                leader = None
                if placement is not None and placement.leader and placement.epoch == processor.leader_epoch:
                    leader = nodes.by_name(placement.leader)
                if leader is not None:
                    status.last_observed_leader_node.CopyFrom(node_id(leader))
            status.last_applied_log_lsn.value = processor.applied_lsn
            durable = await self._topology.reported_durable_lsn(partition)
            if durable is not None:
                status.durable_lsn.value = durable
            latest = None if self._snapshotter is None else self._snapshotter.latest(partition)
            if latest is not None:
                status.last_archived_log_lsn.value = latest.applied_lsn
        return alive


async def peer_alive(address: str) -> cs.AliveNode | None:
    """Another node's `AliveNode`, or None when it does not answer in time."""
    try:
        async with grpc.aio.insecure_channel(grpc_target(address)) as channel:
            stub = peer_pb2_grpc.NodeStateStub(channel)
            return await stub.Local(empty_pb2.Empty(), timeout=PEER_TIMEOUT)
    except grpc.aio.AioRpcError as exc:
        log.info("node at %s did not describe its partitions: %s", address, exc.details())
        return None


async def gather(
    *,
    me: Node,
    local: LocalPartitions,
    nodes: registry.NodesConfig,
    table: topology.Table,
    live: Mapping[str, int],
    logs_version: int,
) -> cs.ClusterState:
    """The cluster state: this node, the other live ones (asked now), the rest dead."""
    state = cs.ClusterState(
        nodes_config_version=common.Version(value=nodes.version),
        partition_table_version=common.Version(value=table.version),
        logs_metadata_version=common.Version(value=logs_version),
    )
    others = [n for n in nodes.nodes if n.name != me.name and n.name in live]
    answers = dict(
        zip(
            (n.name for n in others),
            await asyncio.gather(*(peer_alive(n.address) for n in others)),
            strict=True,
        )
    )
    for node in nodes.nodes:
        entry = state.nodes[node.node_id.id]
        alive = await local.alive(me, table, nodes) if node.name == me.name else answers.get(node.name)
        if alive is None:
            entry.dead.SetInParent()
        else:
            entry.alive.CopyFrom(alive)
    return state
