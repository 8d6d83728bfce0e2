"""One node of a cluster: etcd for metadata and every partition's log, and the roles the table gives it.

`ClusterRuntime` opens the etcd-backed metadata store and log (a chain of segments per partition, on
the etcd provider), provisions the cluster if it is the first node (compare-and-set), joins with a
lease, campaigns for the controller, and follows the partition table as a `PartitionHost`: it starts a
processor for each partition this node replicates (restoring the latest snapshot first if its store is
behind the log's trim point), leads where the table says, and steps down where it no longer does.
Every node also reports how far its store is durable, so the leader of a partition can trim its log
without losing what a replica or a new node would need.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import MutableMapping

from restate_server.cluster import controller as ctl, membership
from restate_server.cluster.manager import PartitionManager
from restate_server.cluster.placement import TABLE_KEY, PartitionTable
from restate_server.cluster.routing import Routing
from restate_server.config import Config
from restate_server.etcd import EtcdClient
from restate_server.log.api import LogCorrupted, TrimGap
from restate_server.log.providers.etcd import EtcdLog
from restate_server.log.segments import SegmentedLog
from restate_server.metadata.providers.etcd import EtcdMetadataStore
from restate_server.rocksdb import Database
from restate_server.schema.registry import SCHEMA_KEY, SchemaRegistry
from restate_server.storage.snapshots import durability
from restate_server.storage.snapshots.rows import delete_partition
from restate_server.tasks import Policy, Supervisor
from restate_server.worker.leadership.leadership import Leadership
from restate_server.worker.processor import PartitionProcessor
from restate_server.worker.snapshotter import SnapshotScheduler
from restate_server.worker.state_machine import ServiceLookup

log = logging.getLogger(__name__)

DURABILITY_KEY = "durable/{partition}/{node}"
PROVISION_WAIT = 60.0  # seconds a node without auto-provision waits for the cluster to be provisioned


def processor_task(partition: int) -> str:
    return f"partition-{partition}"


class ClusterRuntime:
    """The cluster side of a node; `open` first, then `start` once the node's parts exist."""

    def __init__(self, config: Config, supervisor: Supervisor) -> None:
        self.config = config
        self.supervisor = supervisor
        self.me = config.node_name
        root = b"/restate/" + config.cluster_name.encode()
        self.client = EtcdClient(list(config.cluster.metadata_addresses))
        self.metadata = EtcdMetadataStore(self.client, root=root)
        self._root = root
        self.started_at = int(time.time() * 1000)

    async def open(self) -> SegmentedLog:
        """The partitions' log (constructed on the running loop, as the etcd provider needs)."""
        self.etcd_log = EtcdLog(self.client, root=self._root)
        self.log = SegmentedLog({"etcd": self.etcd_log}, "etcd", self.metadata)
        return self.log

    async def partition_count(self) -> int:
        """The cluster's partition count: provisioned by the first node, read by the others."""
        opts = self.config.cluster
        if opts.auto_provision:
            await ctl.provision(self.metadata, self.config.default_num_partitions, opts.default_replication)
        deadline = time.monotonic() + PROVISION_WAIT
        while True:
            stored = await self.metadata.get(TABLE_KEY)
            if stored is not None:
                return PartitionTable.decode(stored.value).num_partitions
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "the cluster is not provisioned: start a node with auto-provision = true, once"
                )
            await asyncio.sleep(0.5)

    async def start(
        self,
        *,
        info: membership.NodeInfo,
        db: Database,
        processors: MutableMapping[int, PartitionProcessor],
        num_partitions: int,
        leadership: Leadership,
        registry: SchemaRegistry,
        lookup_service: ServiceLookup,
        snapshotter: SnapshotScheduler | None,
    ) -> Routing:
        self.db = db
        self.processors = processors
        self.num_partitions = num_partitions
        self.leadership = leadership
        self.registry = registry
        self.lookup_service = lookup_service
        self.snapshotter = snapshotter
        self.member = membership.Membership(self.metadata, info, on_lost=self._lease_lost)
        self.controller = ctl.Controller(self.metadata, self.member)
        self.manager = PartitionManager(self.metadata, self.me, self)
        self.routing = Routing(self.me, self.manager, leadership.is_leader)
        leadership.on_fenced = lambda _p, _e: self.routing.changed()
        await self.member.join()
        spawn = self.supervisor.spawn
        spawn("membership", self.member.run, Policy.FATAL)
        spawn("controller", self.controller.run, Policy.RESTART)
        spawn("partition-roles", self.manager.run, Policy.FATAL)
        spawn("live-nodes", self._follow_nodes, Policy.RESTART)
        spawn("schema-follower", self._follow_schema, Policy.RESTART)
        spawn("durability", self._report_durability, Policy.RESTART)
        await self.manager.table_seen.wait()
        return self.routing

    async def stop(self) -> None:
        try:
            await self.member.leave()
        except Exception as exc:  # etcd gone: the lease runs out on its own
            log.warning("could not leave the cluster cleanly: %s", exc)
        await self.log.close()
        await self.metadata.close()
        await self.client.close()

    # ---- PartitionHost
    async def follow(self, partition: int) -> None:
        processor = PartitionProcessor(partition, self.num_partitions, self.db, self.log, self.lookup_service)
        self.leadership.attach(processor)
        snapshotter = self.snapshotter
        if snapshotter is not None:  # the leader snapshots a partition; its followers need not

            def applied(partition: int, lsn: int) -> None:
                if self.leadership.is_leader(partition):
                    snapshotter.on_applied(partition, lsn)

            processor.on_applied = applied
        self.processors[partition] = processor
        try:
            replayed = await processor.replay()
        except (LogCorrupted, TrimGap) as exc:
            replayed = await self._rebuild(processor, exc)
        log.info(
            "partition %d: following from LSN %d (%d replayed)", partition, processor.applied_lsn, replayed
        )
        self.supervisor.spawn(processor_task(partition), processor.run, Policy.FATAL)
        self.routing.changed()

    async def _rebuild(self, processor: PartitionProcessor, cause: Exception) -> int:
        """The log no longer reaches this store (trimmed past it): start over from the latest snapshot."""
        partition = processor.partition
        if self.snapshotter is None:
            raise LogCorrupted(f"partition {partition}: {cause}; and no snapshot destination is configured")
        log.warning("partition %d: %s; restoring the latest snapshot", partition, cause)
        await asyncio.to_thread(delete_partition, self.db, partition)
        restored = await self.snapshotter.snapshots.restore_latest(partition)
        if restored is None:
            raise LogCorrupted(f"partition {partition}: {cause}; and there is no snapshot to start from")
        return await processor.replay()

    async def lead(self, partition: int, epoch: int) -> bool:
        led = await self.leadership.become_leader(partition, epoch)
        self.routing.changed()
        return led

    async def step_down(self, partition: int) -> None:
        self.leadership.step_down(partition)
        self.routing.changed()

    async def drop(self, partition: int) -> None:
        self.leadership.step_down(partition)
        await self.supervisor.cancel(processor_task(partition))
        self.processors.pop(partition, None)
        self.routing.changed()

    def _lease_lost(self) -> None:
        """Another node may take our partitions now: stop every effect before it does."""
        for partition in list(self.leadership.led_partitions):
            self.leadership.step_down(partition)
        self.routing.changed()

    # ---- followers of cluster-wide facts
    async def _follow_nodes(self) -> None:
        async for nodes in membership.live_nodes(self.metadata):
            self.routing.nodes_changed(nodes)

    async def _follow_schema(self) -> None:
        """Registrations made through any node's admin API become visible here."""
        async for change in self.metadata.watch(SCHEMA_KEY):
            if change.value is not None and change.value.version != self.registry.version:
                await self.registry.refresh()

    async def _report_durability(self) -> None:
        """Tell the cluster how far this node's store is durable; trim the logs this node leads.

        Every `admin.log-trim-check-interval`: a trim needs every replica's report, so reports and
        trims go at the same pace."""
        interval = self.config.admin.log_trim_check_interval
        while interval > 0:
            await asyncio.sleep(interval)
            followed = list(self.processors)
            durable = await asyncio.to_thread(durability.flush_durable_lsns, self.db, followed)
            for partition, lsn in durable.items():
                key = DURABILITY_KEY.format(partition=partition, node=self.me)
                await self.metadata.put(key, str(lsn).encode(), expected_version=None)
            for partition in self.leadership.led_partitions:
                await self._trim(partition)

    async def _trim(self, partition: int) -> None:
        table = self.manager.table
        if table is None:
            return
        lsns = []
        for node in table.partitions[partition].replicas:
            stored = await self.metadata.get(DURABILITY_KEY.format(partition=partition, node=node))
            lsns.append(0 if stored is None else int(stored.value))
        snapshots = self.snapshotter
        point = durability.trim_point(
            durable_lsns=lsns,
            archived_lsn=None if snapshots is None else snapshots.archived_lsn(partition),
            snapshots_enabled=snapshots is not None,
        )
        if point > 0:
            await self.log.trim(partition, point)
