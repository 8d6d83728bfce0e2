"""The log trim rule and a replica's durable applied LSN."""

from __future__ import annotations

from pathlib import Path

import pytest
from restate_server.rocksdb import Database
from restate_server.storage.snapshots.durability import flush_durable_lsns, trim_point
from snapshot_fixtures import fill_partition


@pytest.mark.parametrize(
    ("durable", "archived", "enabled", "expected"),
    [
        ([500], None, False, 500),  # single node, no snapshots: what the store flushed
        ([500, 300, 400], None, False, 0),  # replicas without snapshots: a new replica needs the log
        ([500], 200, True, 200),  # the snapshot lags: keep what a restore would replay
        ([500], 800, True, 500),  # the store lags: keep what a crash would replay
        ([500, 300, 400], 450, True, 300),  # the slowest replica bounds it
        ([500], None, True, 0),  # snapshots configured, none taken yet
        ([], 100, True, 0),  # no replica reported
        ([0, 500], 500, True, 0),  # a replica that reported nothing yet counts as 0
    ],
    ids=[
        "single-no-snapshots",
        "replicas-no-snapshots",
        "snapshot-lags",
        "store-lags",
        "slowest-replica",
        "no-snapshot-yet",
        "no-replicas",
        "unreported-replica",
    ],
)
def test_trim_point_is_the_minimum_of_what_every_recovery_path_needs(
    durable: list[int], archived: int | None, enabled: bool, expected: int
) -> None:
    assert trim_point(durable_lsns=durable, archived_lsn=archived, snapshots_enabled=enabled) == expected


def test_durable_lsns_are_the_applied_lsns_of_the_store(tmp_path: Path) -> None:
    db = Database(tmp_path / "db", wal=False)
    try:
        fill_partition(db, 0, rows=3, applied_lsn=17)
        fill_partition(db, 2, rows=3, applied_lsn=9)
        assert flush_durable_lsns(db, [0, 1, 2]) == {0: 17, 1: 0, 2: 9}
    finally:
        db.close()
