"""A node follows the partition table: the right host calls, in order, per partition."""

from __future__ import annotations

import asyncio

from restate_server.cluster.manager import PartitionManager
from restate_server.cluster.placement import TABLE_KEY, PartitionTable, Placement
from restate_server.metadata.providers.memory import MemoryMetadataStore


class FakeHost:
    def __init__(self, fenced: set[tuple[int, int]] | None = None) -> None:
        self.calls: list[tuple[str, int, int | None]] = []
        self.fenced = fenced or set()

    async def follow(self, partition: int) -> None:
        self.calls.append(("follow", partition, None))

    async def lead(self, partition: int, epoch: int) -> bool:
        self.calls.append(("lead", partition, epoch))
        return (partition, epoch) not in self.fenced

    async def step_down(self, partition: int) -> None:
        self.calls.append(("step_down", partition, None))

    async def drop(self, partition: int) -> None:
        self.calls.append(("drop", partition, None))


def _table(*placements: Placement) -> bytes:
    return PartitionTable(num_partitions=len(placements), replication=2, partitions=placements).encode()


async def _settle(host: FakeHost, count: int) -> None:
    for _ in range(200):
        if len(host.calls) >= count:
            await asyncio.sleep(0.01)
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {host.calls}")


async def test_roles_follow_the_table_in_order() -> None:
    store, host = MemoryMetadataStore(), FakeHost()
    manager = PartitionManager(store, "me", host)
    task = asyncio.create_task(manager.run())
    try:
        v = await store.put(
            TABLE_KEY,
            _table(
                Placement(replicas=("me", "x"), leader="me", epoch=1),
                Placement(replicas=("x", "me"), leader="x", epoch=1),
                Placement(replicas=("x", "y"), leader="x", epoch=1),
            ),
            expected_version=0,
        )
        await _settle(host, 3)
        assert sorted(host.calls) == [("follow", 0, None), ("follow", 1, None), ("lead", 0, 1)]
        assert manager.leads(0)
        assert not manager.leads(1)
        host.calls.clear()
        await store.put(
            TABLE_KEY,
            _table(
                Placement(replicas=("me", "x"), leader="x", epoch=2),  # moved away
                Placement(replicas=("x", "me"), leader="me", epoch=2),  # moved here
                Placement(replicas=("x", "y"), leader="x", epoch=1),
            ),
            expected_version=v,
        )
        await _settle(host, 2)
        assert sorted(host.calls) == [("lead", 1, 2), ("step_down", 0, None)]
        assert not manager.leads(0)
        assert manager.leads(1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_fenced_lead_stays_a_follower_and_dropping_steps_down_first() -> None:
    store, host = MemoryMetadataStore(), FakeHost(fenced={(0, 1)})
    manager = PartitionManager(store, "me", host)
    task = asyncio.create_task(manager.run())
    try:
        v = await store.put(
            TABLE_KEY, _table(Placement(replicas=("me",), leader="me", epoch=1)), expected_version=0
        )
        await _settle(host, 2)
        assert host.calls == [("follow", 0, None), ("lead", 0, 1)]
        assert not manager.leads(0)
        v = await store.put(
            TABLE_KEY, _table(Placement(replicas=("me",), leader="me", epoch=3)), expected_version=v
        )
        await _settle(host, 3)
        assert host.calls[-1] == ("lead", 0, 3)
        assert manager.leads(0)
        await store.put(
            TABLE_KEY, _table(Placement(replicas=("x",), leader="x", epoch=4)), expected_version=v
        )
        await _settle(host, 5)
        assert host.calls[-2:] == [("step_down", 0, None), ("drop", 0, None)]
        await manager.step_down_everywhere()  # nothing led: no calls
        assert len(host.calls) == 5
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
