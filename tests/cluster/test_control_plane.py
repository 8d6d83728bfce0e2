"""Membership and the controller on a real leased store (memory and a real 3-member etcd).

Three simulated nodes share one store; each keeps its lease alive and campaigns for the controller.
A node "dies" when its tasks stop without revoking the lease (as a SIGKILL would): its key expires
after the TTL, and the controller moves what it led.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from restate_server.cluster import controller as ctl, membership
from restate_server.cluster.placement import TABLE_KEY, PartitionTable
from restate_server.etcd import EtcdClient
from restate_server.metadata.api import LeasedStore
from restate_server.metadata.providers.etcd import EtcdMetadataStore
from restate_server.metadata.providers.memory import MemoryMetadataStore

NUM_PARTITIONS = 6


@pytest.fixture(params=["memory", "etcd"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[LeasedStore]:
    if request.param == "memory":
        yield MemoryMetadataStore()
        return
    from etcd_cluster import unique_prefix

    client = EtcdClient(request.getfixturevalue("etcd_cluster").endpoints)
    yield EtcdMetadataStore(client, root=unique_prefix())
    await client.close()


@dataclass
class SimNode:
    member: membership.Membership
    controller: ctl.Controller
    lost: list[float] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        await self.member.join()
        self.tasks = [
            asyncio.create_task(self.member.run()),
            asyncio.create_task(self.controller.run()),
        ]

    async def crash(self) -> None:
        """Stop renewing and controlling without a goodbye (the lease expires on its own)."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _node(store: LeasedStore, name: str) -> SimNode:
    info = membership.NodeInfo(name=name, address=f"http://{name}:5122/", ingress="", admin="", started_at=0)
    sim = SimNode(member=membership.Membership(store, info, on_lost=lambda: None), controller=None)  # type: ignore[arg-type]
    sim.member = membership.Membership(store, info, on_lost=lambda: sim.lost.append(time.monotonic()))
    sim.controller = ctl.Controller(store, sim.member)
    return sim


async def _table(store: LeasedStore) -> PartitionTable | None:
    stored = await store.get(TABLE_KEY)
    return None if stored is None else PartitionTable.decode(stored.value)


async def _eventually(check: Callable[[], Awaitable[object]]) -> object:
    deadline = time.monotonic() + 20.0
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_three_nodes_get_one_table_and_a_dead_leader_is_replaced(store: LeasedStore) -> None:
    nodes = [_node(store, f"n{i}") for i in (1, 2, 3)]
    assert await ctl.provision(store, NUM_PARTITIONS, 2)
    assert not await ctl.provision(store, NUM_PARTITIONS, 2)  # the first CAS provisions, later ones do not
    try:
        for node in nodes:
            await node.start()

        async def placed() -> PartitionTable | None:
            table = await _table(store)
            if table is None or any(p.leader is None or len(p.replicas) != 2 for p in table.partitions):
                return None
            return table

        table = await _eventually(placed)
        assert isinstance(table, PartitionTable)
        assert sum(n.controller.is_controller for n in nodes) == 1
        victim = next(n for n in nodes if n.controller.is_controller)
        led = table.led_by(victim.member.info.name)
        started = time.monotonic()
        await victim.crash()

        async def moved() -> PartitionTable | None:
            now = await _table(store)
            name = victim.member.info.name
            if now is None or any(name in p.replicas for p in now.partitions):
                return None
            return now

        after = await _eventually(moved)
        assert isinstance(after, PartitionTable)
        failover = time.monotonic() - started
        for i in led:
            assert after.partitions[i].epoch > table.partitions[i].epoch
            assert after.partitions[i].leader in table.partitions[i].replicas
        survivors = [n for n in nodes if n is not victim]
        await _eventually(lambda: _any_controller(survivors))
        print(f"failover after the controller's death: {failover:.2f}s")  # reported, not asserted
    finally:
        for node in nodes:
            await node.crash()


async def _any_controller(nodes: list[SimNode]) -> bool:
    return any(n.controller.is_controller for n in nodes)


async def test_a_restarted_node_waits_for_its_old_key_then_joins(store: LeasedStore) -> None:
    first = _node(store, "n1")
    await first.start()
    await first.crash()  # its key stays until the lease expires
    again = _node(store, "n1")
    await again.member.join()  # waits out the old key instead of failing
    assert again.member.lease is not None
    seen = await store.get("nodes/n1")
    assert seen is not None
    await again.member.leave()


async def test_a_node_that_loses_its_lease_reports_it_and_joins_again(store: LeasedStore) -> None:
    node = _node(store, "n1")
    await node.start()
    assert node.member.lease is not None
    await store.revoke_lease(node.member.lease)  # as if etcd had expired it during a long pause
    await _eventually(_returns(lambda: bool(node.lost)))
    await _eventually(lambda: store.get("nodes/n1"))
    await node.crash()
    with contextlib.suppress(Exception):
        await node.member.leave()


def _returns(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        return check()

    return run
