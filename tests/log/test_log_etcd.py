"""What only the etcd provider has to prove: retries write once, a lost etcd leader loses nothing
acknowledged, a fenced partition in a packed Txn fails alone, tails survive compaction."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from etcd_cluster import EtcdCluster, unique_prefix
from log_harness import numbers, rec
from restate_server import etcd
from restate_server.log.api import Fenced, LogEntry
from restate_server.log.providers.etcd import EtcdLog


class _Unavailable(grpc.RpcError):
    """What gRPC raises when the member answering died after etcd applied the request."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE


@pytest.fixture
async def client(etcd_cluster: EtcdCluster) -> AsyncIterator[etcd.EtcdClient]:
    c = etcd.EtcdClient(etcd_cluster.endpoints)
    yield c
    await c.close()


async def _batch_keys(client: etcd.EtcdClient, root: bytes, partition: int) -> list[bytes]:
    start = b"%s/log/%010d/b/" % (root, partition)
    found = await client.range(start, etcd.prefix_end(start), keys_only=True)
    return [kv.key for kv in found.kvs]


async def test_etcd_ambiguous_error_after_the_txn_landed_writes_once(client: etcd.EtcdClient) -> None:
    root = unique_prefix()
    log = EtcdLog(client, root=root)
    await log.acquire(0, 1)
    real_txn = client.txn
    calls = 0

    async def landed_then_lost(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        response = await real_txn(*args, **kwargs)
        if calls == 1:
            raise _Unavailable()  # the answer is lost: the client cannot know it was applied
        return response

    client.txn = landed_then_lost  # type: ignore[method-assign]
    try:
        assert await log.append(0, [rec(1), rec(2)], 1) == 2
    finally:
        client.txn = real_txn  # type: ignore[method-assign]
    assert calls == 2
    assert len(await _batch_keys(client, root, 0)) == 1
    assert numbers(await log.read(0, 1, 10)) == [1, 2]
    assert await log.append(0, [rec(3)], 1) == 3
    await log.close()


async def test_etcd_packed_txn_fails_only_the_fenced_partition(etcd_cluster: EtcdCluster) -> None:
    root = unique_prefix()
    first, second = etcd.EtcdClient(etcd_cluster.endpoints), etcd.EtcdClient(etcd_cluster.endpoints)
    mine, theirs = EtcdLog(first, root=root), EtcdLog(second, root=root)
    try:
        for partition in (1, 2, 3):
            await mine.acquire(partition, 1)
        await theirs.acquire(2, 2)
        txns = mine.txns
        futures = [mine.submit(p, [rec(p)], 1) for p in (1, 2, 3)]  # one round: one Txn for all three
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert results[0] == 1
        assert isinstance(results[1], Fenced)
        assert results[2] == 1
        assert mine.txns - txns == 2  # the packed Txn failed on partition 2, the retry without it landed
        assert numbers(await theirs.read(1, 1, 5)) == [1]
        assert await theirs.read(2, 1, 5) == []
        assert numbers(await theirs.read(3, 1, 5)) == [3]
    finally:
        await mine.close()
        await theirs.close()
        await first.close()
        await second.close()


async def test_etcd_tail_resumes_after_compaction(client: etcd.EtcdClient) -> None:
    log = EtcdLog(client, root=unique_prefix())
    await log.acquire(0, 1)
    await log.append(0, [rec(1), rec(2)], 1)
    tail = log.tail(0, 1)
    got: list[LogEntry] = await anext(tail)  # read at revision R; the watch starts at R + 1 on the next step
    for n in range(3, 8):
        await log.append(0, [rec(n)], 1)
    latest = await client.range(b"/")
    await client.compact(int(latest.header.revision))  # R + 1 is gone: the watch cannot start there
    async with asyncio.timeout(20):
        while len(got) < 7:
            got += await anext(tail)
    await tail.aclose()
    assert [lsn for lsn, _ in got] == list(range(1, 8))
    assert numbers(got) == list(range(1, 8))
    await log.close()


async def test_etcd_trim_deletes_batches_and_reports_db_size(client: etcd.EtcdClient) -> None:
    root = unique_prefix()
    log = EtcdLog(client, root=root)
    await log.acquire(0, 1)
    for n in range(1, 11):
        await log.append(0, [rec(n)], 1)
    assert await log.trim(0, 6) == 6
    assert len(await _batch_keys(client, root, 0)) == 4  # batches 7..10 stay
    assert numbers(await log.read(0, 7, 10)) == [7, 8, 9, 10]
    assert await log.db_size() > 0
    await log.close()


async def test_etcd_leader_sigkill_during_appends_loses_no_acknowledged_record(
    etcd_cluster: EtcdCluster, client: etcd.EtcdClient
) -> None:
    log = EtcdLog(client, root=unique_prefix())
    await log.acquire(0, 1)
    total, killed_at = 400, 100
    acked: dict[int, int] = {}  # lsn -> n
    stalls: list[float] = []
    victim = -1

    async def write() -> None:
        nonlocal victim
        for n in range(1, total + 1, 4):
            started = time.monotonic()
            group = range(n, min(n + 4, total + 1))
            lsns = await asyncio.gather(*(log.submit(0, [rec(m)], 1) for m in group))
            stalls.append(time.monotonic() - started)
            acked.update(zip(lsns, group, strict=True))
            if victim < 0 and n >= killed_at:
                victim = etcd_cluster.leader()
                await asyncio.to_thread(etcd_cluster.kill, victim)

    follower: list[LogEntry] = []

    async def follow() -> None:
        async for batch in log.tail(0, 1):
            follower.extend(batch)
            if len(follower) >= total:
                return

    try:
        async with asyncio.timeout(120):
            await asyncio.gather(write(), follow())
    finally:
        if victim >= 0:
            await asyncio.to_thread(etcd_cluster.restart, victim)
    stored = await log.read(0, 1, total)
    assert [lsn for lsn, _ in stored] == list(range(1, total + 1))
    assert all(numbers([entry])[0] == acked[entry[0]] for entry in stored)
    assert [lsn for lsn, _ in follower] == list(range(1, total + 1))
    print(f"etcd leader SIGKILL: longest append stall {max(stalls):.2f}s over {len(stalls)} groups")
    await log.close()


async def test_etcd_append_throughput(client: etcd.EtcdClient) -> None:
    """Not an assertion on speed: prints what the packed group commit carries here."""
    log = EtcdLog(client, root=unique_prefix())
    partitions, per_partition = 8, 250
    for partition in range(partitions):
        await log.acquire(partition, 1)

    async def writer(partition: int) -> None:
        for n in range(per_partition):
            await log.append(partition, [rec(n)], 1)

    txns = log.txns
    started = time.monotonic()
    await asyncio.gather(*(writer(p) for p in range(partitions)))
    elapsed = time.monotonic() - started
    total = partitions * per_partition
    for partition in range(partitions):
        assert (await log.find_tail(partition)).next_lsn == per_partition + 1
    print(
        f"etcd appends: {total} records from {partitions} partitions in {elapsed:.2f}s"
        f" = {total / elapsed:.0f} records/s, {log.txns - txns} Txns"
    )
    await log.close()
