"""Snapshots end to end: a real server snapshots its partitions while serving, and a node whose partition
store was wiped comes back from the snapshots plus the log suffix, with every counter exact."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from harness import Sdk, Server, wait_until
from restate_server.log.providers.rocksdb import RocksDbStorage
from restate_server.rocksdb import Database

INTERVAL = 20  # records between automatic snapshots of a partition
KEYS = ("a", "b", "c", "d", "e")
RESTORED = re.compile(r"partition (\d+) restored from snapshot \S+ at applied LSN (\d+)")
READY = re.compile(r"node \S+ ready in \S+ \((\d+) partitions, (\d+) log records replayed")


def _latest_lsns(destination: Path) -> dict[int, int]:
    lsns = {}
    for latest in destination.glob("*/latest.json"):
        document = json.loads(latest.read_text())
        lsns[document["partition_id"]] = document["applied_lsn"]
    return lsns


def _log_tails(node_dir: Path, partitions: int) -> dict[int, int]:
    """The LSN after each partition's last record, read from the stopped node's log."""
    db = Database(node_dir / "log", read_only=True)
    try:
        storage = RocksDbStorage(db)
        return {p: storage.load(p)[1] for p in range(partitions)}
    finally:
        db.close()


@pytest.fixture
def snapshot_dir(tmp_path: Path) -> Path:
    return tmp_path / "snapshots"


@pytest.fixture
def server(tmp_path: Path, snapshot_dir: Path, request: pytest.FixtureRequest):
    srv = Server(
        base_dir=tmp_path / "data",
        log_path=tmp_path / "server.log",
        env={
            "RESTATE_DEFAULT_NUM_PARTITIONS": "2",
            "RESTATE_WORKER__SNAPSHOTS__DESTINATION": f"file://{snapshot_dir}",
            "RESTATE_WORKER__SNAPSHOTS__SNAPSHOT_INTERVAL_NUM_RECORDS": str(INTERVAL),
        },
    )
    srv.start()
    yield srv
    srv.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(srv.log_path.read_text()[-20000:])


def _add(server: Server, expected: Counter[str], rounds: int) -> None:
    for i in range(rounds):
        key = KEYS[i % len(KEYS)]
        expected[key] += 1
        resp = server.call(f"Counter/{key}/add", 1)
        assert resp.status_code == 200, resp.text
        assert resp.json() == expected[key]


def test_wiped_partition_store_restores_from_snapshots_and_replays_only_the_suffix(
    server: Server, sdk: Sdk, snapshot_dir: Path
) -> None:
    server.register(sdk.uri)
    expected: Counter[str] = Counter()
    _add(server, expected, 30)
    first = wait_until(lambda: _latest_lsns(snapshot_dir))
    _add(server, expected, 30)
    # snapshots keep coming, each newer than the one before
    wait_until(lambda: any(lsn > first.get(p, 0) for p, lsn in _latest_lsns(snapshot_dir).items()))
    _add(server, expected, 10)
    server.kill()

    node_dir = server.base_dir / "n1"
    snapshots = _latest_lsns(snapshot_dir)
    tails = _log_tails(node_dir, 2)
    assert all(0 < snapshots[p] < tails[p] for p in snapshots)
    shutil.rmtree(node_dir / "db")  # the partition store is gone, the log is kept
    offset = server.log_path.stat().st_size
    server.start()

    log = server.log_path.read_text()[offset:]
    restored = {int(p): int(lsn) for p, lsn in RESTORED.findall(log)}
    assert restored == snapshots
    ready = READY.search(log)
    assert ready is not None, log
    replayed = int(ready.group(2))
    total = sum(tail - 1 for tail in tails.values())
    assert replayed == sum(tails[p] - 1 - restored.get(p, 0) for p in tails)
    assert replayed < total
    for key, count in expected.items():
        assert server.call(f"Counter/{key}/get").json() == count
    _add(server, expected, 5)  # and the restored partitions keep going
