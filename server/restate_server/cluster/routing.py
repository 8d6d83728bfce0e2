"""Where a partition's requests go: this node when it leads the partition, else the leader the table names.

The table (`PartitionManager.table`) says who should lead; `leads` says whether this node has taken
leadership up (announced and applied). A request for a partition whose leader is unknown, unreachable
or still moving waits for the next change (`changed`) and tries again, up to a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from restate_server.cluster.manager import PartitionManager
from restate_server.cluster.membership import NodeInfo


class Routing:
    def __init__(self, me: str, manager: PartitionManager, leads: Callable[[int], bool]) -> None:
        self.me = me
        self.manager = manager
        self.leads = leads
        self.nodes: dict[str, NodeInfo] = {}
        self._changed = asyncio.Event()

    def nodes_changed(self, nodes: dict[str, NodeInfo]) -> None:
        self.nodes = nodes
        self.changed()

    def changed(self) -> None:
        """Wake requests waiting for a leader (the table, the live nodes or a leadership moved)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, patience: float) -> None:
        """Until something that routing depends on changes, or `patience` seconds."""
        event = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(patience):
                await event.wait()

    def leader_address(self, partition: int) -> str | None:
        """The node-port address of the partition's leader elsewhere; None if unknown or this node."""
        table = self.manager.table
        if table is None or partition >= table.num_partitions:
            return None
        leader = table.partitions[partition].leader
        if leader is None or leader == self.me:
            return None
        info = self.nodes.get(leader)
        return None if info is None else info.address
