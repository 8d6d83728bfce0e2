"""Snapshot a partition, restore it into a fresh store: same rows, same applied LSN, nothing else."""

from __future__ import annotations

import json
import threading
import tracemalloc
from pathlib import Path

import pytest
from restate_server.config.worker import ObjectStoreOptions
from restate_server.rocksdb import Database
from restate_server.storage import fsm, keys
from restate_server.storage.snapshots import rows as snapshot_rows
from restate_server.storage.snapshots.model import (
    FORMAT_VERSION,
    PartitionNotEmpty,
    SnapshotCorrupted,
    SnapshotMetadata,
)
from restate_server.storage.snapshots.repository import SnapshotRepository
from restate_server.storage.transaction import Transaction
from snapshot_fixtures import PARTITIONS, all_rows, fill_partition, rows_of, snapshots_for


def _fill_all(db: Database, rows: int = 50) -> None:
    for partition in PARTITIONS:
        fill_partition(db, partition, rows=rows, applied_lsn=100 + partition)


async def test_restore_gives_identical_rows_of_that_partition_only(
    db: Database, fresh_db: Database, repository: SnapshotRepository, tmp_path: Path
) -> None:
    _fill_all(db)
    source = snapshots_for(db, repository, tmp_path / "staging-a", "n1")
    metadata = await source.create(2)
    assert (metadata.partition_id, metadata.applied_lsn, metadata.node_name) == (2, 102, "n1")
    assert metadata.rows == len(rows_of(db, 2))
    assert metadata.format_version == FORMAT_VERSION

    replica = snapshots_for(fresh_db, repository, tmp_path / "staging-b", "n2")
    restored = await replica.restore_latest(2)
    assert restored == metadata
    assert all_rows(fresh_db) == rows_of(db, 2)  # byte-identical, and no row of another partition
    assert fsm.get_int(Transaction(fresh_db), 2, fsm.APPLIED_LSN) == 102
    assert not list((tmp_path / "staging-a").iterdir())  # work files are removed
    assert not list((tmp_path / "staging-b").iterdir())


async def test_restore_without_snapshot_returns_none(
    fresh_db: Database, repository: SnapshotRepository, tmp_path: Path
) -> None:
    assert await snapshots_for(fresh_db, repository, tmp_path / "s", "n1").restore_latest(1) is None
    assert all_rows(fresh_db) == []


async def test_restore_refuses_a_partition_that_has_rows(
    db: Database, fresh_db: Database, repository: SnapshotRepository, tmp_path: Path
) -> None:
    _fill_all(db)
    await snapshots_for(db, repository, tmp_path / "a", "n1").create(1)
    fill_partition(fresh_db, 1, rows=1, applied_lsn=5)
    before = all_rows(fresh_db)
    with pytest.raises(PartitionNotEmpty):
        await snapshots_for(fresh_db, repository, tmp_path / "b", "n2").restore_latest(1)
    assert all_rows(fresh_db) == before


async def test_restore_empty_restores_only_empty_partitions_with_a_snapshot(
    db: Database, fresh_db: Database, repository: SnapshotRepository, tmp_path: Path
) -> None:
    _fill_all(db)
    source = snapshots_for(db, repository, tmp_path / "a", "n1")
    await source.create(0)
    await source.create(3)
    fill_partition(fresh_db, 3, rows=2, applied_lsn=7)  # a replica that already has partition 3
    restored = await snapshots_for(fresh_db, repository, tmp_path / "b", "n2").restore_empty(PARTITIONS)
    assert set(restored) == {0}
    assert rows_of(fresh_db, 0) == rows_of(db, 0)
    assert fsm.get_int(Transaction(fresh_db), 3, fsm.APPLIED_LSN) == 7


async def test_latest_follows_the_newest_snapshot_and_metadata_is_readable(
    db: Database, repository: SnapshotRepository, tmp_path: Path
) -> None:
    source = snapshots_for(db, repository, tmp_path / "a", "n1")
    lsns = []
    for lsn in (10, 25, 40):
        fill_partition(db, 1, rows=5, applied_lsn=lsn)
        lsns.append((await source.create(1)).applied_lsn)
    latest = await source.latest(1)
    assert lsns == [10, 25, 40]
    assert latest is not None
    assert latest.applied_lsn == 40
    assert await source.latest(2) is None
    assert [d.applied_lsn for d in repository.directories(1)] == [10, 25, 40]
    assert all(d.complete for d in repository.directories(1))


async def test_file_layout_and_metadata_document(db: Database, tmp_path: Path) -> None:
    repository = SnapshotRepository.open(f"file://{tmp_path / 'repo'}/prefix")
    fill_partition(db, 1, rows=5, applied_lsn=42)
    metadata = await snapshots_for(db, repository, tmp_path / "a", "n1").create(1)
    root = tmp_path / "repo" / "prefix" / "1"
    latest = json.loads((root / "latest.json").read_text())
    assert latest == json.loads((root / metadata.directory.split("/", 1)[1] / "metadata.json").read_text())
    assert metadata.directory.startswith("1/lsn_00000000000000000042-snap_")
    assert latest["applied_lsn"] == 42
    assert latest["partition_id"] == 1
    assert latest["created_at"].endswith("Z")
    assert {"cluster_name", "node_name", "rows", "size_bytes", "sha256", "format_version"} <= set(latest)
    assert (root / metadata.directory.split("/", 1)[1] / "data.sst").stat().st_size == metadata.size_bytes


async def test_prune_keeps_the_newest_and_reports_the_oldest_kept_lsn(
    db: Database, repository: SnapshotRepository, tmp_path: Path
) -> None:
    source = snapshots_for(db, repository, tmp_path / "a", "n1")
    for lsn in (10, 20, 30):
        fill_partition(db, 0, rows=3, applied_lsn=lsn)
        await source.create(0)
    assert await source.prune(0, keep=2) == 20
    assert [d.applied_lsn for d in repository.directories(0)] == [20, 30]
    assert await source.archived_lsn(0, keep=1) == 30
    assert await source.prune(0, keep=1) == 30
    assert [d.applied_lsn for d in repository.directories(0)] == [30]


async def test_a_tampered_data_file_is_refused_and_nothing_is_loaded(
    db: Database, fresh_db: Database, tmp_path: Path
) -> None:
    repository = SnapshotRepository.open(f"file://{tmp_path / 'repo'}")
    fill_partition(db, 1, rows=20, applied_lsn=9)
    metadata = await snapshots_for(db, repository, tmp_path / "a", "n1").create(1)
    data = tmp_path / "repo" / metadata.data_path()
    raw = bytearray(data.read_bytes())
    raw[100] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(SnapshotCorrupted, match="sha256"):
        await snapshots_for(fresh_db, repository, tmp_path / "b", "n2").restore_latest(1)
    assert all_rows(fresh_db) == []


def test_metadata_of_an_unknown_format_version_is_refused() -> None:
    document = {"format_version": FORMAT_VERSION + 1, "created_at": "2025-01-01T00:00:00Z"}
    with pytest.raises(SnapshotCorrupted, match="format version"):
        SnapshotMetadata.decode(json.dumps(document).encode())
    with pytest.raises(SnapshotCorrupted, match="unreadable"):
        SnapshotMetadata.decode(b"{not json")


async def test_snapshot_is_consistent_while_the_partition_keeps_being_written(
    db: Database, fresh_db: Database, tmp_path: Path
) -> None:
    """Each write adds row i and sets APPLIED_LSN = i atomically: a restored store has rows 1..LSN exactly."""
    repository = SnapshotRepository.open(f"file://{tmp_path / 'repo'}")
    fill_partition(db, 1, rows=2000, applied_lsn=1)
    stop = threading.Event()

    def writer() -> None:
        lsn = 1
        while not stop.is_set() and lsn < 200_000:
            lsn += 1
            txn = Transaction(db)
            txn.put(keys.outbox(1, 1_000_000 + lsn), b"x")
            fsm.set_int(txn, 1, fsm.APPLIED_LSN, lsn)
            txn.commit()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        metadata = await snapshots_for(db, repository, tmp_path / "a", "n1").create(1)
    finally:
        stop.set()
        thread.join()
    await snapshots_for(fresh_db, repository, tmp_path / "b", "n2").restore_latest(1)
    written = [k for k, _ in rows_of(fresh_db, 1) if k.startswith(keys.table(keys.OUTBOX, 1))]
    late = [keys.outbox_seq(k) for k in written if keys.outbox_seq(k) > 1_000_000]
    assert metadata.applied_lsn > 1  # the writer was running
    assert sorted(late) == list(range(1_000_002, 1_000_000 + metadata.applied_lsn + 1))


@pytest.mark.parametrize("scheme", ["file", "s3"], ids=["file", "s3"])
async def test_a_large_partition_streams_in_bounded_memory(
    scheme: str, db: Database, fresh_db: Database, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """~200k rows (about 40 MB as Python objects) go out and back in with a small Python heap peak."""
    if scheme == "file":
        repository = SnapshotRepository.open(f"file://{tmp_path / 'repo'}")
    else:
        destination, options = request.getfixturevalue("s3_destination")
        repository = SnapshotRepository.open(destination, options)
    fill_partition(db, 1, rows=200_000 // 7 + 1, applied_lsn=77, value_size=100)
    fill_partition(db, 2, rows=10, applied_lsn=5)
    expected = snapshot_rows.partition_rows(db, 1)
    tracemalloc.start()
    try:
        metadata = await snapshots_for(db, repository, tmp_path / "a", "n1").create(1)
        restored = await snapshots_for(fresh_db, repository, tmp_path / "b", "n2").restore_latest(1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert restored == metadata
    assert metadata.rows >= 200_000
    assert metadata.size_bytes > 20 * 1024 * 1024
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"  # measured ~2.1 MiB: two download chunks
    assert all(a == b for a, b in zip(expected, snapshot_rows.partition_rows(fresh_db, 1), strict=True))
    assert rows_of(fresh_db, 2) == []


async def test_s3_settings_left_unset_come_from_the_aws_environment(
    db: Database,
    s3_destination: tuple[str, ObjectStoreOptions],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    destination, options = s3_destination
    monkeypatch.setenv("AWS_ENDPOINT_URL", str(options.aws_endpoint_url))
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    repository = SnapshotRepository.open(destination)
    fill_partition(db, 0, rows=3, applied_lsn=4)
    await snapshots_for(db, repository, tmp_path / "a", "n1").create(0)
    latest = await snapshots_for(db, repository, tmp_path / "a", "n1").latest(0)
    assert latest is not None
    assert latest.applied_lsn == 4
