"""Helpers and fixtures of the snapshot tests: stores with rows in every table, both repository kinds.

The `s3://` repository runs against moto's S3 server (`moto[server]`, `python -m moto.server` on a free
loopback port), one per test session, with a fresh bucket per test.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from ports import free_port
from restate_server.config.worker import ObjectStoreOptions
from restate_server.rocksdb import Database
from restate_server.storage import fsm, keys
from restate_server.storage.snapshots.repository import SnapshotRepository
from restate_server.storage.snapshots.rows import partition_rows
from restate_server.storage.snapshots.transfer import PartitionSnapshots
from restate_server.storage.transaction import Transaction

PARTITIONS = (0, 1, 2, 3)


def fill_partition(
    db: Database, partition: int, *, rows: int, applied_lsn: int, value_size: int = 20
) -> None:
    """Rows in every table of one partition (`rows` per table, in batches), at `applied_lsn`."""
    noise = random.Random(partition)  # incompressible values, so sizes are realistic
    for start in range(0, rows, 10_000):
        txn = Transaction(db)
        for i in range(start, min(rows, start + 10_000)):
            value = noise.randbytes(value_size)
            ident = i.to_bytes(8, "big")
            txn.put(keys.status(partition, b"inv" + ident), value)
            txn.put(keys.journal(partition, b"inv" + ident, i % 7), value)
            txn.put(keys.state(partition, "Counter", f"k{i}", b"count"), value)
            txn.put(keys.inbox(partition, "Counter", f"k{i % 13}", i), value)
            txn.put(keys.timer(partition, 1_700_000_000_000 + i, 1, ident), value)
            txn.put(keys.outbox(partition, i), value)
            txn.put(keys.promise(partition, "Wf", f"w{i}", "p"), value)
        txn.commit()
    txn = Transaction(db)
    fsm.set_int(txn, partition, fsm.APPLIED_LSN, applied_lsn)
    fsm.set_int(txn, partition, fsm.LEADER_EPOCH, 3)
    txn.commit()


def rows_of(db: Database, partition: int) -> list[tuple[bytes, bytes]]:
    return list(partition_rows(db, partition))


def all_rows(db: Database) -> list[tuple[bytes, bytes]]:
    return list(db.scan(b"", b"\xff\xff"))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "node" / "db", wal=False)
    yield database
    database.close()


@pytest.fixture
def fresh_db(tmp_path: Path) -> Iterator[Database]:
    """A second, empty store (a new replica)."""
    database = Database(tmp_path / "replica" / "db", wal=False)
    yield database
    database.close()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server in its own process, so its memory is not in the tests' tracemalloc figures."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(endpoint + "/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start (see {log.name})") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


S3_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture
def s3_destination(s3_endpoint: str) -> tuple[str, ObjectStoreOptions]:
    bucket = "snapshots-" + uuid.uuid4().hex[:12]
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **S3_CREDENTIALS).create_bucket(
        Bucket=bucket
    )
    options = ObjectStoreOptions(
        aws_region="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_endpoint_url=s3_endpoint,
        aws_allow_http=True,
    )
    return f"s3://{bucket}/cluster-a", options


@pytest.fixture(params=["file", "s3"])
def repository(request: pytest.FixtureRequest, tmp_path: Path) -> SnapshotRepository:
    if request.param == "file":
        return SnapshotRepository.open(f"file://{tmp_path / 'repo'}")
    destination, options = request.getfixturevalue("s3_destination")
    return SnapshotRepository.open(destination, options)


def snapshots_for(
    db: Database, repository: SnapshotRepository, staging: Path, node: str
) -> PartitionSnapshots:
    return PartitionSnapshots(db, repository, staging_dir=staging, cluster_name="c1", node_name=node)
