"""What a single node and a cluster node answer differently to the control services.

A single node is a cluster of one: it replicates and leads every partition, keeps its metadata in its
own store (a metadata member, as upstream's embedded metadata server) and every log in its own RocksDB
(upstream's `local` loglet); its documents never change shape, so they stay at version 1. A cluster
node reads the partition table, the log chains and the replicas' durability reports from etcd (where
each has a version), and knows who is alive from membership. `Topology` is that difference; the
services (`services`, `state`) are the same on both.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from restate_server.cluster.placement import TABLE_KEY, PartitionTable, Placement
from restate_server.cluster.runtime import DURABILITY_KEY, ClusterRuntime
from restate_server.log.api import Chain, Segment
from restate_server.log.segments import CHAIN_KEY
from restate_server.metadata.api import MetadataStore
from restate_server.rocksdb import Database
from restate_server.storage.snapshots import durability

SINGLE_NODE_ROLES = ("admin", "http-ingress", "metadata-server", "worker")
CLUSTER_NODE_ROLES = ("admin", "http-ingress", "worker")
"""A cluster node keeps no metadata itself (etcd does) and runs no log server (the log is in etcd)."""

PROVIDER_KINDS = {"etcd": "replicated", "local": "local", "rocksdb": "local", "memory": "in-memory"}
"""Our log providers as upstream's loglet kinds: the etcd log is replicated (by etcd's quorum)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    """The partition table and its version."""

    version: int
    replication: int
    placements: tuple[Placement, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Chains:
    """Every partition's log chain, and the version of them all (it grows whenever one changes)."""

    version: int
    chains: Mapping[int, Chain]


class Topology(Protocol):
    roles: tuple[str, ...]
    metadata_member: bool
    """This node holds the cluster's metadata (upstream's embedded metadata server)."""
    log_replication: int | None
    """Copies a log append waits for (None: the logs are this node's own)."""

    def live(self) -> Mapping[str, int]:
        """The live nodes by name, with the time each started (ms since the epoch)."""
        ...

    async def table(self) -> Table: ...

    async def chains(self) -> Chains: ...

    async def reported_durable_lsn(self, partition: int) -> int | None:
        """The durable applied LSN this node last reported for the partition (None: none)."""
        ...

    async def durable_lsns(self, partition: int) -> list[int]:
        """Every replica's durable applied LSN, this node's made durable now (blocks on a flush)."""
        ...


async def _flushed(db: Database, partition: int) -> int:
    return (await asyncio.to_thread(durability.flush_durable_lsns, db, [partition]))[partition]


class SingleNode:
    """A node without a metadata client: every partition, led here."""

    roles: tuple[str, ...] = SINGLE_NODE_ROLES
    metadata_member = True
    log_replication: int | None = None

    def __init__(
        self, *, me: str, started_at: int, num_partitions: int, db: Database, epoch: Callable[[int], int]
    ) -> None:
        self._me = me
        self._started_at = started_at
        self._num_partitions = num_partitions
        self._db = db
        self._epoch = epoch

    def live(self) -> Mapping[str, int]:
        return {self._me: self._started_at}

    async def table(self) -> Table:
        return Table(
            version=1,
            replication=1,
            placements=tuple(
                Placement(replicas=(self._me,), leader=self._me, epoch=self._epoch(p))
                for p in range(self._num_partitions)
            ),
        )

    async def chains(self) -> Chains:
        return Chains(
            version=1,
            chains={
                p: Chain(segments=(Segment(provider="local", loglet_id=p, base_lsn=1),))
                for p in range(self._num_partitions)
            },
        )

    async def reported_durable_lsn(self, partition: int) -> int | None:
        return None  # a single node reports to no one; its trimmer flushes and trims in one go

    async def durable_lsns(self, partition: int) -> list[int]:
        return [await _flushed(self._db, partition)]


class ClusterNode:
    """A node of an etcd cluster: the cluster's facts as etcd holds them now."""

    roles: tuple[str, ...] = CLUSTER_NODE_ROLES
    metadata_member = False

    def __init__(self, runtime: ClusterRuntime, *, etcd_members: int) -> None:
        self._runtime = runtime
        self.log_replication: int | None = (
            etcd_members // 2 + 1
        )  # etcd acknowledges once a majority has a write

    @property
    def _metadata(self) -> MetadataStore:
        return self._runtime.metadata

    def live(self) -> Mapping[str, int]:
        return {name: info.started_at for name, info in self._runtime.routing.nodes.items()}

    async def table(self) -> Table:
        stored = await self._metadata.get(TABLE_KEY)
        if stored is None:  # a running node has seen the provisioned table
            raise RuntimeError("the cluster has no partition table")
        table = PartitionTable.decode(stored.value)
        return Table(version=stored.version, replication=table.replication, placements=table.partitions)

    async def chains(self) -> Chains:
        num_partitions = self._runtime.num_partitions
        stored = await asyncio.gather(
            *(self._metadata.get(CHAIN_KEY.format(partition=p)) for p in range(num_partitions))
        )
        chains = {}
        for p, found in enumerate(stored):
            if found is None:  # not used yet: created on first use with one segment on the default provider
                chains[p] = Chain(segments=(Segment(provider="etcd", loglet_id=p, base_lsn=1),))
            else:
                chains[p] = Chain.from_wire(json.loads(found.value))
        return Chains(version=max(1, sum(f.version for f in stored if f is not None)), chains=chains)

    async def reported_durable_lsn(self, partition: int) -> int | None:
        return await self._report(partition, self._runtime.me)

    async def _report(self, partition: int, node: str) -> int | None:
        stored = await self._metadata.get(DURABILITY_KEY.format(partition=partition, node=node))
        return None if stored is None else int(stored.value)

    async def durable_lsns(self, partition: int) -> list[int]:
        table = self._runtime.manager.table
        replicas = () if table is None else table.partitions[partition].replicas
        lsns = []
        for node in replicas:
            if node == self._runtime.me:
                lsns.append(await _flushed(self._runtime.db, partition))
            else:
                lsns.append(await self._report(partition, node) or 0)
        return lsns
