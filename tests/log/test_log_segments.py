"""The segment chain: a partition's log moves from one provider to another by sealing a segment."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from log_harness import numbers, rec
from restate_server.log.api import Chain, LogEntry, Segment, TrimGap
from restate_server.log.providers.memory import MemoryLog
from restate_server.log.providers.rocksdb import RocksDbLog
from restate_server.log.segments import SegmentedLog
from restate_server.metadata.providers.memory import MemoryMetadataStore
from restate_server.rocksdb import Database


async def test_log_continues_on_another_provider_after_a_sealed_segment(tmp_path: Path) -> None:
    db = Database(tmp_path / "log", strict_wal=True)
    metadata = MemoryMetadataStore()
    memory = MemoryLog()
    log = SegmentedLog({"memory": memory, "rocksdb": RocksDbLog(db)}, "memory", metadata)
    assert await log.acquire(0, 1) == 1
    assert await log.append(0, [rec(1), rec(2), rec(3)], 1) == 3

    follower: list[LogEntry] = []

    async def follow() -> None:
        async for batch in log.tail(0, 2):
            follower.extend(batch)
            if follower[-1][0] >= 5:
                return

    following = asyncio.create_task(follow())
    chain = await log.extend(0, "rocksdb", loglet_id=0)
    assert chain == Chain(
        segments=(
            Segment(provider="memory", loglet_id=0, base_lsn=1, sealed_tail=4),
            Segment(provider="rocksdb", loglet_id=0, base_lsn=4),
        )
    )
    assert (await memory.find_tail(0)).sealed
    assert await log.acquire(0, 2) == 4
    assert await log.append(0, [rec(4), rec(5)], 2) == 5
    async with asyncio.timeout(10):
        await following
    assert [lsn for lsn, _ in follower] == [2, 3, 4, 5]
    assert numbers(await log.read(0, 1, 10)) == [1, 2, 3, 4, 5]
    assert [lsn for lsn, _ in await log.read(0, 3, 4)] == [3, 4]
    assert (await log.find_tail(0)).next_lsn == 6

    # the chain is in metadata: another node (a new SegmentedLog) reads it the same way
    again = SegmentedLog({"memory": memory, "rocksdb": RocksDbLog(db)}, "memory", metadata)
    assert await again.chain(0) == chain
    assert numbers(await again.read(0, 2, 5)) == [2, 3, 4, 5]

    # trimming crosses the boundary too
    assert await log.trim(0, 4) == 4
    with pytest.raises(TrimGap) as gap:
        await log.read(0, 2, 5)
    assert gap.value.trim_point == 4
    assert numbers(await log.read(0, 5, 5)) == [5]
    await log.close()
    db.close()


def test_chain_round_trips_and_rejects_a_broken_record() -> None:
    chain = Chain(segments=(Segment(provider="memory", loglet_id=3, base_lsn=1),))
    sealed = chain.sealed_at(10).extended("etcd", 3)
    assert Chain.from_wire(sealed.to_wire()) == sealed
    assert [s.provider for s in sealed.covering(10)] == ["etcd"]
    assert [s.provider for s in sealed.covering(9)] == ["memory", "etcd"]
    with pytest.raises(ValueError, match="not a log segment"):
        Chain.from_wire([["memory", "3", 1, None]])
