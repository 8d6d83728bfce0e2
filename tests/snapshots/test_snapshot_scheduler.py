"""The snapshot driver: when a partition is due, explicit requests, and its lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from restate_server.rocksdb import Database
from restate_server.storage.snapshots.model import FORMAT_VERSION, SnapshotError, SnapshotMetadata
from restate_server.storage.snapshots.repository import SnapshotRepository
from restate_server.worker.snapshotter import SnapshotPolicy, SnapshotScheduler
from snapshot_fixtures import fill_partition, snapshots_for


def _snapshot_at(lsn: int, created: float) -> SnapshotMetadata:
    return SnapshotMetadata(
        format_version=FORMAT_VERSION,
        snapshot_id="snap_x",
        partition_id=0,
        applied_lsn=lsn,
        created_at=datetime.fromtimestamp(created, UTC),
        cluster_name="c",
        node_name="n",
        directory="0/x",
        data_file="data.sst",
        rows=1,
        size_bytes=1,
        sha256="",
    )


@pytest.mark.parametrize(
    ("policy", "applied", "latest", "now", "due"),
    [
        (SnapshotPolicy(), 10_000, None, 0.0, False),
        (SnapshotPolicy(interval_num_records=100), 99, None, 0.0, False),
        (SnapshotPolicy(interval_num_records=100), 100, None, 0.0, True),
        (SnapshotPolicy(interval_num_records=100), 199, _snapshot_at(100, 0), 0.0, False),
        (SnapshotPolicy(interval_num_records=100), 200, _snapshot_at(100, 0), 0.0, True),
        (SnapshotPolicy(interval=60.0), 5, _snapshot_at(4, 1000), 1059.0, False),
        (SnapshotPolicy(interval=60.0), 5, _snapshot_at(4, 1000), 1060.0, True),
        (SnapshotPolicy(interval=60.0), 4, _snapshot_at(4, 1000), 5000.0, False),
        (SnapshotPolicy(interval=60.0, interval_num_records=10), 9, _snapshot_at(0, 0), 5000.0, False),
        (SnapshotPolicy(interval=60.0, interval_num_records=10), 10, _snapshot_at(0, 4990), 5000.0, False),
        (SnapshotPolicy(interval=60.0, interval_num_records=10), 10, _snapshot_at(0, 0), 5000.0, True),
    ],
    ids=[
        "no-interval-means-on-request-only",
        "records-short",
        "records-reached",
        "records-since-latest-short",
        "records-since-latest-reached",
        "time-short",
        "time-reached",
        "time-reached-but-nothing-new",
        "both-records-short",
        "both-time-short",
        "both-reached",
    ],
)
def test_policy_due(
    policy: SnapshotPolicy, applied: int, latest: SnapshotMetadata | None, now: float, due: bool
) -> None:
    assert policy.due(applied_lsn=applied, latest=latest, now=now) is due


@pytest.fixture
def repository(tmp_path: Path) -> SnapshotRepository:
    return SnapshotRepository.open(f"file://{tmp_path / 'repo'}")


@pytest.fixture
async def scheduler(
    db: Database, repository: SnapshotRepository, tmp_path: Path
) -> AsyncIterator[SnapshotScheduler]:
    driver = SnapshotScheduler(
        snapshots_for(db, repository, tmp_path / "staging", "n1"), SnapshotPolicy(interval_num_records=10)
    )
    driver.start([0, 1])
    yield driver
    await driver.stop()


def _lsns(repository: SnapshotRepository, partition: int) -> list[int]:
    return [d.applied_lsn for d in repository.directories(partition)]


async def _settled(scheduler: SnapshotScheduler, db: Database) -> None:
    """Wait until the worker handled everything queued before (one worker, requests in order)."""
    fill_partition(db, 3, rows=1, applied_lsn=1)
    await scheduler.create_now(3)


async def test_a_partition_is_snapshotted_every_interval_of_applied_records(
    scheduler: SnapshotScheduler, db: Database, repository: SnapshotRepository
) -> None:
    fill_partition(db, 1, rows=5, applied_lsn=5)
    scheduler.on_applied(1, 5)
    await _settled(scheduler, db)
    assert _lsns(repository, 1) == []
    fill_partition(db, 1, rows=5, applied_lsn=12)
    scheduler.on_applied(1, 12)
    await _settled(scheduler, db)
    assert _lsns(repository, 1) == [12]
    fill_partition(db, 1, rows=5, applied_lsn=21)
    scheduler.on_applied(1, 21)  # 9 records since the snapshot at 12
    await _settled(scheduler, db)
    assert _lsns(repository, 1) == [12]
    fill_partition(db, 1, rows=5, applied_lsn=22)
    scheduler.on_applied(1, 22)
    await _settled(scheduler, db)
    assert _lsns(repository, 1) == [22]  # num-retained 1: the older one is pruned
    assert scheduler.archived_lsn(1) == 22
    assert scheduler.archived_lsn(0) is None  # looked up at start, has none


async def test_counting_starts_from_the_latest_snapshot_in_the_repository(
    db: Database, repository: SnapshotRepository, tmp_path: Path
) -> None:
    fill_partition(db, 1, rows=5, applied_lsn=50)
    await snapshots_for(db, repository, tmp_path / "other", "n0").create(1)  # a previous leader's
    driver = SnapshotScheduler(
        snapshots_for(db, repository, tmp_path / "staging", "n1"), SnapshotPolicy(interval_num_records=10)
    )
    driver.start()
    try:
        fill_partition(db, 1, rows=5, applied_lsn=55)
        driver.on_applied(1, 55)
        await _settled(driver, db)
        assert _lsns(repository, 1) == [50]
        assert driver.archived_lsn(1) == 50
    finally:
        await driver.stop()


async def test_create_now_covers_what_was_applied_and_reuses_an_up_to_date_snapshot(
    scheduler: SnapshotScheduler, db: Database
) -> None:
    fill_partition(db, 0, rows=5, applied_lsn=3)  # below the interval: only an explicit request snapshots
    first = await scheduler.create_now(0)
    assert first.applied_lsn == 3
    again = await scheduler.create_now(0)
    assert again.snapshot_id == first.snapshot_id
    fill_partition(db, 0, rows=5, applied_lsn=4)
    newer = await scheduler.create_now(0)
    assert (newer.applied_lsn, newer.snapshot_id != first.snapshot_id) == (4, True)
    assert scheduler.latest(0) == newer


async def test_a_failed_request_is_reported_and_the_driver_keeps_serving(
    scheduler: SnapshotScheduler, db: Database
) -> None:
    with pytest.raises(SnapshotError, match="applied no record"):
        await scheduler.create_now(2)
    fill_partition(db, 2, rows=1, applied_lsn=8)
    assert (await scheduler.create_now(2)).applied_lsn == 8


async def test_stop_fails_requests_still_queued(
    db: Database, repository: SnapshotRepository, tmp_path: Path
) -> None:
    driver = SnapshotScheduler(snapshots_for(db, repository, tmp_path / "staging", "n1"), SnapshotPolicy())
    request = asyncio.ensure_future(driver.create_now(0))  # never started: stays queued
    await asyncio.sleep(0)
    await driver.stop()
    with pytest.raises(SnapshotError, match="shutting down"):
        await request
    with pytest.raises(SnapshotError, match="shutting down"):
        await driver.create_now(0)
