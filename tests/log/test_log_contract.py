"""One contract for every log provider (memory, RocksDB, etcd), in the style of bifrost's loglet_tests.

Each test opens the provider through a harness, so "restart" means a new provider (and for etcd a new
client) over the same storage.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import types
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from log_harness import EtcdHarness, Harness, MemoryHarness, RocksDbHarness, SegmentsHarness, numbers, rec
from restate_server.log.api import Fenced, LogClosedError, LogEntry, LogProvider, Sealed, TrimGap

P = 3  # a partition other than 0, so keys of partition 0 would not be read by accident


@pytest.fixture(params=["memory", "rocksdb", "etcd", "segments"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    h: Harness
    if request.param == "memory":
        h = MemoryHarness()
    elif request.param == "rocksdb":
        h = RocksDbHarness(tmp_path / "log")
    elif request.param == "segments":
        h = SegmentsHarness()
    else:
        from etcd_cluster import unique_prefix

        cluster = request.getfixturevalue("etcd_cluster")
        h = EtcdHarness(cluster.endpoints, unique_prefix())
    yield h
    await h.cleanup()


@pytest.fixture
async def log(harness: Harness) -> AsyncIterator[LogProvider]:
    provider = await harness.open()
    yield provider
    await provider.close()


async def _collect(log: LogProvider, from_lsn: int, count: int) -> list[LogEntry]:
    got: list[LogEntry] = []
    async with asyncio.timeout(20):
        async for batch in log.tail(P, from_lsn):
            got += batch
            if len(got) >= count:
                break
    return got


async def test_log_append_read_and_tail(log: LogProvider) -> None:
    assert await log.acquire(P, 1) == 1
    assert await log.append(P, [rec(1), rec(2), rec(3)], 1) == 3
    read = await log.read(P, 1, 10)
    assert [lsn for lsn, _ in read] == [1, 2, 3]
    assert numbers(read) == [1, 2, 3]
    assert numbers(await log.read(P, 2, 2)) == [2]
    tail = await log.find_tail(P)
    assert (tail.next_lsn, tail.sealed, tail.epoch, tail.trim_point) == (4, False, 1, 0)

    async def later() -> None:
        await log.append(P, [rec(4)], 1)
        await log.append(P, [rec(5), rec(6)], 1)

    task = asyncio.create_task(later())
    got = await _collect(log, 2, 5)
    await task
    assert [lsn for lsn, _ in got] == [2, 3, 4, 5, 6]
    assert numbers(got) == [2, 3, 4, 5, 6]


async def test_log_empty_partition(log: LogProvider) -> None:
    assert await log.read(P, 1, 100) == []
    tail = await log.find_tail(P)
    assert (tail.next_lsn, tail.sealed, tail.epoch, tail.trim_point) == (1, False, 0, 0)


async def test_log_concurrent_submits_keep_call_order(log: LogProvider) -> None:
    await log.acquire(P, 1)
    await log.acquire(P + 1, 1)
    futures = []
    for n in range(1, 61):
        futures.append(log.submit(P, [rec(n), rec(1000 + n)] if n % 3 == 0 else [rec(n)], 1))
        futures.append(log.submit(P + 1, [rec(n)], 1))
    lsns = await asyncio.gather(*futures)
    own = lsns[0::2]
    assert own == sorted(own)
    assert lsns[1::2] == list(range(1, 61))
    read = await log.read(P, 1, own[-1])
    expected = []
    for n in range(1, 61):
        expected += [n, 1000 + n] if n % 3 == 0 else [n]
    assert numbers(read) == expected
    assert [lsn for lsn, _ in read] == list(range(1, len(expected) + 1))


async def test_log_trim_keeps_the_point_and_the_tail(harness: Harness, log: LogProvider) -> None:
    await log.acquire(P, 1)
    for n in range(1, 11):
        await log.append(P, [rec(n)], 1)
    assert await log.trim(P, 4) == 4
    assert await log.trim(P, 2) == 4  # never moves back
    with pytest.raises(TrimGap) as gap:
        await log.read(P, 1, 10)
    assert gap.value.trim_point == 4
    assert numbers(await log.read(P, 5, 10)) == [5, 6, 7, 8, 9, 10]
    with pytest.raises(TrimGap):
        await _collect(log, 3, 1)
    assert await log.trim(P, 100) == 10  # clamped to the tail: everything goes, the tail stays
    assert await log.read(P, 11, 20) == []
    await log.close()
    reopened = await harness.open()
    try:
        tail = await reopened.find_tail(P)
        assert (tail.next_lsn, tail.trim_point) == (11, 10)
        with pytest.raises(TrimGap):
            await reopened.read(P, 10, 10)
        await reopened.acquire(P, 2)
        assert await reopened.append(P, [rec(11)], 2) == 11
        assert numbers(await reopened.read(P, 11, 11)) == [11]
    finally:
        await reopened.close()


async def test_log_stale_epoch_is_fenced_and_writes_nothing(log: LogProvider) -> None:
    await log.acquire(P, 1)
    await log.append(P, [rec(1)], 1)
    assert await log.acquire(P, 2) == 2
    with pytest.raises(Fenced) as fenced:
        await log.append(P, [rec(2)], 1)
    assert (fenced.value.epoch, fenced.value.current) == (1, 2)
    with pytest.raises(Fenced):
        await log.acquire(P, 2)
    with pytest.raises(Fenced):
        await log.acquire(P, 1)
    assert (await log.find_tail(P)).next_lsn == 2
    assert numbers(await log.read(P, 1, 10)) == [1]
    assert await log.append(P, [rec(3)], 2) == 2


async def test_log_acquire_lands_or_fences_appends_in_flight(log: LogProvider) -> None:
    await log.acquire(P, 1)
    futures = [log.submit(P, [rec(n)], 1) for n in range(1, 6)]
    tail = await log.acquire(P, 2)  # the old epoch's appends are still in flight
    results = await asyncio.gather(*futures, return_exceptions=True)
    landed = [r for r in results if isinstance(r, int)]
    assert all(isinstance(r, Fenced) for r in results if not isinstance(r, int))
    assert landed == list(range(1, len(landed) + 1))
    assert tail == len(landed) + 1
    assert await log.append(P, [rec(9)], 2) == tail
    assert numbers(await log.read(P, 1, tail)) == [*range(1, len(landed) + 1), 9]


@pytest.mark.parametrize("harness", ["etcd"], indirect=True)  # a local log has exactly one writer process
async def test_log_fence_of_a_second_writer(harness: Harness, log: LogProvider) -> None:
    """A second provider instance (another node) takes over; the first one is fenced."""
    await log.acquire(P, 1)
    await log.append(P, [rec(1)], 1)
    other = await harness.open()
    try:
        assert await other.acquire(P, 2) == 2
        with pytest.raises(Fenced):
            await log.append(P, [rec(2)], 1)
        assert await other.append(P, [rec(3)], 2) == 2
        assert numbers(await other.read(P, 1, 5)) == [1, 3]
    finally:
        await other.close()


async def test_log_append_after_seal_fails(log: LogProvider) -> None:
    await log.acquire(P, 1)
    await log.append(P, [rec(1), rec(2)], 1)
    assert await log.seal(P) == 3
    with pytest.raises(Sealed):
        await log.append(P, [rec(3)], 1)
    tail = await log.find_tail(P)
    assert (tail.next_lsn, tail.sealed) == (3, True)
    # a tail delivers what was written before the seal, then ends
    got = await _collect(log, 1, 100)
    assert numbers(got) == [1, 2]


async def test_log_seal_of_an_empty_log(log: LogProvider) -> None:
    assert await log.seal(P) == 1
    tail = await log.find_tail(P)
    assert (tail.next_lsn, tail.sealed) == (1, True)
    assert await log.acquire(P, 1) == 1
    with pytest.raises(Sealed):
        await log.append(P, [rec(1)], 1)


async def test_log_append_after_close_fails_cleanly(log: LogProvider) -> None:
    await log.acquire(P, 1)
    await log.append(P, [rec(1)], 1)
    await log.close()
    with pytest.raises(LogClosedError):
        await log.append(P, [rec(2)], 1)
    with pytest.raises(LogClosedError):
        await log.read(P, 1, 1)


async def test_log_close_ends_a_waiting_tail(log: LogProvider) -> None:
    await log.acquire(P, 1)
    await log.append(P, [rec(1)], 1)
    seen = asyncio.Event()

    async def follow() -> None:
        async for _batch in log.tail(P, 1):
            seen.set()

    task = asyncio.create_task(follow())
    async with asyncio.timeout(10):
        await seen.wait()
        await log.close()
        with pytest.raises(LogClosedError):
            await task


async def test_log_survives_reopen(harness: Harness, log: LogProvider) -> None:
    await log.acquire(P, 3)
    await log.append(P, [rec(1), rec(2)], 3)
    await log.append(P, [rec(3)], 3)
    await log.close()
    reopened = await harness.open()
    try:
        tail = await reopened.find_tail(P)
        assert (tail.next_lsn, tail.epoch) == (4, 3)
        assert numbers(await reopened.read(P, 1, 3)) == [1, 2, 3]
        with pytest.raises(Fenced):
            await reopened.acquire(P, 3)
        assert await reopened.acquire(P, 4) == 4
        assert await reopened.append(P, [rec(4)], 4) == 4
    finally:
        await reopened.close()


async def test_log_tail_follows_many_appends_without_gaps(log: LogProvider) -> None:
    await log.acquire(P, 1)
    total = 300

    async def write() -> None:
        for n in range(1, total + 1, 3):
            await asyncio.gather(*(log.submit(P, [rec(m)], 1) for m in range(n, min(n + 3, total + 1))))

    writer = asyncio.create_task(write())
    got = await _collect(log, 1, total)
    await writer
    assert [lsn for lsn, _ in got] == list(range(1, total + 1))
    assert numbers(got) == list(range(1, total + 1))


async def test_log_tail_resumes_when_cancelled(log: LogProvider) -> None:
    await log.acquire(P, 1)
    await log.append(P, [rec(1), rec(2)], 1)
    first = await _collect(log, 1, 1)
    resume = first[-1][0] + 1
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_collect(log, 1, 10), 0.2)  # a tail cancelled while waiting
    await log.append(P, [rec(3)], 1)
    got = await _collect(log, resume, 3 - resume + 1)
    assert [lsn for lsn, _ in got] == list(range(resume, 4))


async def test_log_tail_holds_no_record_while_it_waits(log: LogProvider) -> None:
    """A tail waiting for the next append keeps nothing it has yielded: records may carry megabytes."""
    await log.acquire(P, 1)
    await log.append(P, [rec(1)], 1)
    tail = log.tail(P, 1)
    waiting: asyncio.Future[list[LogEntry]] | None = None
    try:
        batch = await asyncio.wait_for(anext(tail), 20)  # read by the catch-up
        for number in (2, 3):
            delivered = batch[-1][1]
            del batch
            waiting = asyncio.ensure_future(anext(tail))
            await asyncio.sleep(0.1)  # the tail waits for the next append now
            assert not waiting.done()
            if _reachable(tail, delivered):
                pytest.fail(f"the waiting tail still holds record {number - 1}")
            del delivered
            await log.append(P, [rec(number)], 1)  # followed live
            batch = await asyncio.wait_for(waiting, 20)
            assert numbers(batch) == [number]
    finally:
        if waiting is not None and not waiting.done():
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
        await tail.aclose()


_CONTAINERS = (list, tuple, dict, set, collections.deque, types.FrameType, types.CellType)
_SUSPENDED = (types.CoroutineType, types.AsyncGeneratorType, types.GeneratorType)


def _reachable(root: object, target: object, depth: int = 8) -> bool:
    """Whether ``target`` is reachable from ``root`` through generator frames and containers (not
    through other objects: a provider may keep its records, a suspended tail may not)."""
    seen: set[int] = set()
    level = [root]
    for _ in range(depth):
        following = []
        for obj in level:
            for ref in gc.get_referents(obj):
                if ref is target:
                    return True
                if id(ref) not in seen and isinstance(ref, _CONTAINERS + _SUSPENDED):
                    seen.add(id(ref))
                    following.append(ref)
        level = following
    return False
