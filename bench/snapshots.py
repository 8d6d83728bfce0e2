"""``python -m bench.snapshots``: size and time of a partition snapshot (create, then restore) for N rows.

Fills one partition of a scratch partition store with N rows spread over the state, journal and status
tables (random values of ``--value-bytes``, so compression does not flatter the sizes), plus a
neighbour partition that must not be copied, then times ``PartitionSnapshots.create`` and
``restore_latest`` into an empty store against a ``file://`` destination (or ``--destination``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from restate_server.rocksdb import Database
from restate_server.storage import fsm, keys
from restate_server.storage.snapshots.repository import SnapshotRepository
from restate_server.storage.snapshots.transfer import PartitionSnapshots
from restate_server.storage.transaction import Transaction


def _fill(db: Database, partition: int, rows: int, value_bytes: int) -> None:
    noise = random.Random(partition)
    for start in range(0, rows, 30_000):
        txn = Transaction(db)
        for i in range(start, min(rows, start + 30_000)):
            value = noise.randbytes(value_bytes)
            match i % 3:
                case 0:
                    txn.put(keys.state(partition, "Counter", f"key-{i}", b"count"), value)
                case 1:
                    txn.put(keys.journal(partition, i.to_bytes(17, "big"), i % 10), value)
                case _:
                    txn.put(keys.status(partition, i.to_bytes(17, "big")), value)
        txn.commit()
    txn = Transaction(db)
    fsm.set_int(txn, partition, fsm.APPLIED_LSN, rows)
    txn.commit()


async def _measure(rows: int, value_bytes: int, destination: str | None, work: Path) -> str:
    source = Database(work / f"source-{rows}", wal=False)
    target = Database(work / f"target-{rows}", wal=False)
    try:
        _fill(source, 1, rows, value_bytes)
        _fill(source, 2, 1000, value_bytes)
        repository = SnapshotRepository.open(destination or f"file://{work / 'repository'}")
        node = PartitionSnapshots(
            source, repository, staging_dir=work / "a", cluster_name="b", node_name="n1"
        )
        started = time.monotonic()
        metadata = await node.create(1)
        created = time.monotonic() - started
        replica = PartitionSnapshots(
            target, repository, staging_dir=work / "b", cluster_name="b", node_name="n2"
        )
        started = time.monotonic()
        await replica.restore_latest(1)
        restored = time.monotonic() - started
    finally:
        source.close()
        target.close()
    raw_mib = rows * (value_bytes + 40) / 2**20  # value plus a typical key
    return f"| {rows:>9,} | {raw_mib:8.1f} | {metadata.size_bytes / 2**20:8.1f} | {created:6.2f} | {restored:6.2f} |"


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--destination", help="s3://… or file://… (default: a scratch directory)")
    args = parser.parse_args()
    print("|      rows | raw MiB | SST MiB | create s | restore s |")
    print("|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        for rows in args.rows:
            print(await _measure(rows, args.value_bytes, args.destination, Path(scratch)), flush=True)


if __name__ == "__main__":
    asyncio.run(_main())
