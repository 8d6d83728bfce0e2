"""A node follows the partition table: it replicates the partitions given to it and leads some of them.

For every partition the table names this node in, the node runs a processor that tails the partition's
log (a warm follower); where the table also names it leader, it leads at the table's epoch. Changes are
applied per partition, one at a time and in order (follow, lead, step down, drop), by a small task per
partition, so a partition that is slow to catch up never holds up the others. What "follow" and "lead"
do is the node's business (`PartitionHost`); this module only decides which to do when.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from restate_server.cluster.placement import TABLE_KEY, PartitionTable
from restate_server.metadata.api import MetadataStore

log = logging.getLogger(__name__)


class PartitionHost(Protocol):
    """What the node does for one partition; each call completes the change before returning."""

    async def follow(self, partition: int) -> None:
        """Start applying the partition's log into the local store (no effects)."""
        ...

    async def lead(self, partition: int, epoch: int) -> bool:
        """Catch up, fence older leaders at `epoch` and start the partition's effects.

        False when a newer epoch already holds the log (the table will catch up with that).
        """
        ...

    async def step_down(self, partition: int) -> None:
        """Stop the partition's effects now; keep following."""
        ...

    async def drop(self, partition: int) -> None:
        """Stop following the partition (this node is no longer a replica)."""
        ...


@dataclass(frozen=True, slots=True)
class Role:
    """What this node should be for one partition: nothing, a follower, or the leader at an epoch."""

    follow: bool = False
    lead_epoch: int | None = None


NOTHING = Role()


def role_of(table: PartitionTable, partition: int, me: str) -> Role:
    placement = table.partitions[partition]
    if me not in placement.replicas:
        return NOTHING
    return Role(follow=True, lead_epoch=placement.epoch if placement.leader == me else None)


class PartitionManager:
    """Applies the table's roles for this node; `table` is the latest table seen (for routing)."""

    def __init__(self, store: MetadataStore, me: str, host: PartitionHost) -> None:
        self.store = store
        self.me = me
        self.host = host
        self.table: PartitionTable | None = None
        self.table_seen = asyncio.Event()
        self._wanted: dict[int, Role] = {}
        self._current: dict[int, Role] = {}
        self._wake: dict[int, asyncio.Event] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Follow the table forever."""
        try:
            async for change in self.store.watch(TABLE_KEY):
                if change.value is None:
                    continue
                self.table = PartitionTable.decode(change.value.value)
                self.table_seen.set()
                for partition in range(self.table.num_partitions):
                    self._want(partition, role_of(self.table, partition, self.me))
        finally:
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def leads(self, partition: int) -> bool:
        """True while this node has taken up leadership of `partition` (not merely been given it)."""
        return self._current.get(partition, NOTHING).lead_epoch is not None

    async def step_down_everywhere(self) -> None:
        """The node lost its membership: stop every effect at once; the table will say what next."""
        for partition, role in list(self._current.items()):
            if role.lead_epoch is not None:
                await self.host.step_down(partition)
                self._current[partition] = Role(follow=True)
                self._want(partition, self._current[partition])

    def _want(self, partition: int, role: Role) -> None:
        if self._wanted.get(partition, NOTHING) == role and partition in self._tasks:
            return
        self._wanted[partition] = role
        wake = self._wake.setdefault(partition, asyncio.Event())
        wake.set()
        if partition not in self._tasks:
            self._tasks[partition] = asyncio.create_task(
                self._converge(partition, wake), name=f"role-{partition}"
            )

    async def _converge(self, partition: int, wake: asyncio.Event) -> None:
        """Move this partition's role towards the wanted one, one step at a time, forever."""
        while True:
            await wake.wait()
            wake.clear()
            while (wanted := self._wanted[partition]) != (current := self._current.get(partition, NOTHING)):
                await self._step(partition, current, wanted)

    async def _step(self, partition: int, current: Role, wanted: Role) -> None:
        if current.lead_epoch is not None and wanted.lead_epoch != current.lead_epoch:
            log.info("partition %d: stepping down (epoch %d)", partition, current.lead_epoch)
            await self.host.step_down(partition)
            self._current[partition] = Role(follow=True)
        elif not wanted.follow:
            await self.host.drop(partition)
            self._current[partition] = NOTHING
        elif not current.follow:
            await self.host.follow(partition)
            self._current[partition] = Role(follow=True)
        elif wanted.lead_epoch is not None:
            epoch = wanted.lead_epoch
            led = await self.host.lead(partition, epoch)
            log.info("partition %d: %s at epoch %d", partition, "leading" if led else "fenced", epoch)
            # fenced: a newer epoch exists, so the table will change; wait for it rather than retry
            self._current[partition] = Role(follow=True, lead_epoch=epoch if led else None)
            if not led:
                self._wanted[partition] = self._current[partition]
