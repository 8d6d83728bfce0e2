"""The cluster controller: one elected node keeps the partition table in step with the live nodes.

Election: the node that creates the `controller` key (compare-and-set on absence) attached to its
membership lease is the controller until its lease ends; the others watch the key and try again when it
disappears. The controller watches the live nodes and the table, and writes `place(table, live)` with
compare-and-set whenever it differs. Failover (a dead leader) is applied at once; evening out
leadership is paced (`SPREAD_EVERY`), so a node joining never causes a burst of leader changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from restate_server.cluster import membership, placement
from restate_server.cluster.placement import PartitionTable
from restate_server.metadata.api import ABSENT, LeasedStore, PreconditionFailed, Versioned

log = logging.getLogger(__name__)

CONTROLLER_KEY = "controller"
SETTLE = 0.1  # seconds: changes arriving together (a watch's initial state) are applied together
START_GRACE = 2.0  # seconds the first controller of a new cluster waits for the nodes starting with it
SPREAD_EVERY = 5.0  # seconds between two leadership moves that only even out the load


async def provision(store: LeasedStore, num_partitions: int, replication: int) -> bool:
    """Write the initial table unless one exists; True if this call created it."""
    table = PartitionTable.provision(num_partitions, replication)
    try:
        await store.put(placement.TABLE_KEY, table.encode(), expected_version=ABSENT)
    except PreconditionFailed:
        return False
    log.info("provisioned the cluster: %d partitions, replication %d", num_partitions, replication)
    return True


@dataclass(slots=True)
class _View:
    """What the controller last saw: the live node names and the stored table."""

    live: set[str] | None = None
    table: Versioned | None = None


class Controller:
    """Runs for the node's whole life: campaigns, and controls while elected."""

    def __init__(self, store: LeasedStore, member: membership.Membership) -> None:
        self.store = store
        self.member = member
        self.is_controller = False

    async def run(self) -> None:
        while True:
            if await self._campaign():
                self.is_controller = True
                log.info("node %s is the cluster controller", self.member.info.name)
                try:
                    await self._control()
                finally:
                    self.is_controller = False
            else:
                await self._wait_for_vacancy()

    async def _campaign(self) -> bool:
        try:
            await self.store.put(
                CONTROLLER_KEY,
                self.member.info.name.encode(),
                expected_version=ABSENT,
                lease=self.member.lease,
            )
        except PreconditionFailed:
            return False
        return True

    async def _wait_for_vacancy(self) -> None:
        async for change in self.store.watch(CONTROLLER_KEY):
            if change.value is None:
                return

    async def _control(self) -> None:
        """Until the controller key is lost: place partitions whenever nodes or the table change."""
        changed = asyncio.Event()
        state = _View()

        async def follow_nodes() -> None:
            async for nodes in membership.live_nodes(self.store):
                state.live = set(nodes)
                changed.set()

        async def follow_table() -> None:
            async for change in self.store.watch(placement.TABLE_KEY):
                state.table = change.value
                changed.set()

        async def follow_own_key() -> None:
            async for change in self.store.watch(CONTROLLER_KEY):
                if change.value is None or change.value.value != self.member.info.name.encode():
                    return

        tasks = [
            asyncio.create_task(follow_nodes(), name="controller-nodes"),
            asyncio.create_task(follow_table(), name="controller-table"),
            asyncio.create_task(self._place_loop(changed, state), name="controller-place"),
            asyncio.create_task(follow_own_key(), name="controller-key"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()  # a watch that failed ends the term with its error (the supervisor logs it)
        log.warning("node %s is no longer the cluster controller", self.member.info.name)

    async def _place_loop(self, changed: asyncio.Event, state: _View) -> None:
        last_spread = time.monotonic()
        grace_until = last_spread + START_GRACE
        while True:
            with contextlib.suppress(TimeoutError):  # a paced move may fall due without any change
                async with asyncio.timeout(SPREAD_EVERY):
                    await changed.wait()
            await asyncio.sleep(SETTLE)
            changed.clear()
            stored, live = state.table, state.live
            if stored is None or live is None:
                continue  # not provisioned yet, or no view of the nodes yet
            table = PartitionTable.decode(stored.value)
            if any(p.leader is None for p in table.partitions) and time.monotonic() < grace_until:
                # a new cluster: place once the nodes starting together are in (a failover never waits)
                await asyncio.sleep(grace_until - time.monotonic())
                changed.set()
                continue
            spread = time.monotonic() - last_spread >= SPREAD_EVERY
            new = placement.place(table, live, spread=spread)
            if new == table:
                continue
            if spread and new != placement.place(table, live, spread=False):
                last_spread = time.monotonic()
            with contextlib.suppress(PreconditionFailed):  # someone wrote first: the watch brings it
                await self.store.put(placement.TABLE_KEY, new.encode(), expected_version=stored.version)
                log.info("partition table updated for live nodes %s", sorted(live))
