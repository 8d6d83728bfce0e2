"""The partition processor: replay, tail, batches, commit retries, waiters, announcements."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from restate_server.log import records as rec
from restate_server.log.api import LogCorrupted
from restate_server.log.providers.memory import MemoryLog
from restate_server.rocksdb import Database
from restate_server.storage import fsm, status
from restate_server.storage.transaction import Transaction
from restate_server.worker import actions as act, processor as processor_mod
from restate_server.worker.processor import MAX_BATCH, PartitionProcessor
from sm_env import invoke, lookup
from worker_env import disk_full, eventually


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(tmp_path / "db", wal=False)
    yield database  # type: ignore[misc]
    database.close()


def _processor(db: Database, log: MemoryLog) -> PartitionProcessor:
    return PartitionProcessor(0, 1, db, log, lookup)


async def test_replay_applies_the_log_beyond_the_store_and_drops_the_actions(db: Database) -> None:
    log = MemoryLog()
    await log.append(0, [invoke(n=n) for n in range(5)], 0)
    first = _processor(db, log)
    sink: list[object] = []
    first.on_actions = lambda p, actions: sink.append(actions)
    assert await first.replay() == 5
    assert first.applied_lsn == 5
    assert sink == []
    await log.append(0, [invoke(n=9)], 0)
    again = _processor(db, log)  # a restart: only the suffix is replayed
    assert await again.replay() == 1
    assert len(status.scan(Transaction(db), 0)) == 6


async def test_replay_refuses_a_log_that_no_longer_reaches_the_store(db: Database) -> None:
    log = MemoryLog()
    await log.append(0, [invoke(n=n) for n in range(3)], 0)
    await log.trim(0, 2)
    with pytest.raises(LogCorrupted, match="acknowledged records are missing"):
        await _processor(db, log).replay()


async def test_replay_reads_long_logs_in_bounded_batches(db: Database) -> None:
    log = MemoryLog()
    await log.append(0, [invoke(n=n) for n in range(MAX_BATCH + 10)], 0)
    processor = _processor(db, log)
    assert await processor.replay() == MAX_BATCH + 10
    assert fsm.get_int(Transaction(db), 0, fsm.APPLIED_LSN) == MAX_BATCH + 10


async def test_the_tail_is_applied_and_its_actions_given_after_the_commit(db: Database) -> None:
    log = MemoryLog()
    processor = _processor(db, log)
    await processor.replay()
    seen: list[tuple[int, list[act.Action], int]] = []

    def sink(partition: int, actions: list[act.Action]) -> None:
        seen.append((partition, actions, fsm.get_int(Transaction(db), 0, fsm.APPLIED_LSN)))

    processor.on_actions = sink
    task = asyncio.create_task(processor.run())
    try:
        lsn = await log.append(0, [invoke(n=1)], 0)
        await processor.wait_applied(lsn)
        await processor.wait_applied(lsn)  # already applied: returns at once
        [(partition, actions, committed)] = seen
        assert (partition, committed) == (0, lsn)  # the store had the batch before the actions ran
        assert [type(a) for a in actions] == [act.StartAttempt]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_failed_commit_is_retried_until_the_store_takes_it(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(processor_mod, "COMMIT_RETRY_INITIAL", 0.001)
    log = MemoryLog()
    processor = _processor(db, log)
    await processor.replay()
    write = db.write
    failures = 3

    def flaky_write(batch: object, *, sync: bool) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise disk_full()
        write(batch, sync=sync)  # type: ignore[arg-type]

    monkeypatch.setattr(db, "write", flaky_write)
    task = asyncio.create_task(processor.run())
    try:
        with caplog.at_level(logging.INFO, logger="restate_server.worker.processor"):
            lsn = await log.append(0, [invoke(n=1), invoke(n=2)], 0)
            await asyncio.wait_for(processor.wait_applied(lsn), 5)
        assert processor.commit_failures == 0
        assert len(status.scan(Transaction(db), 0)) == 2  # nothing skipped
        assert "committing LSNs 1..2 to the partition store failed" in caplog.text
        assert "accepts writes again after 3 failed commits" in caplog.text
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_applied_announcement_is_reported_once_and_a_stale_one_not_at_all(db: Database) -> None:
    log = MemoryLog()
    processor = _processor(db, log)
    await processor.replay()
    announced: list[tuple[int, int]] = []
    processor.on_announced = lambda partition, epoch: announced.append((partition, epoch))
    task = asyncio.create_task(processor.run())
    try:
        await log.append(0, [rec.AnnounceLeader(leader_epoch=2, epoch=2)], 0)
        lsn = await log.append(0, [rec.AnnounceLeader(leader_epoch=1, epoch=1), invoke(n=1)], 0)
        await processor.wait_applied(lsn)
        assert announced == [(0, 2)]
        assert processor.leader_epoch == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_waiters_are_released_in_lsn_order(db: Database) -> None:
    log = MemoryLog()
    processor = _processor(db, log)
    await processor.replay()
    task = asyncio.create_task(processor.run())
    try:
        later = asyncio.ensure_future(processor.wait_applied(3))
        sooner = asyncio.ensure_future(processor.wait_applied(1))
        await log.append(0, [invoke(n=1)], 0)
        await eventually(sooner.done)
        assert not later.done()
        await log.append(0, [invoke(n=2), invoke(n=3)], 0)
        await asyncio.wait_for(later, 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
