"""One partition's rows of the node's partition store, out to an SST file and back in.

The store is one RocksDB for every partition, and every key starts with a table tag and the partition
(`storage/keys.py`), so a partition's rows are one contiguous range per table. The tables are found in
the data itself (a skip scan over the tag byte): a table added later is snapshotted with no change here.

Export reads a checkpoint (RocksDB's consistent copy of the database, hard-linked, taken after a
memtable flush) instead of the live database: rocksdict's snapshot iterators do not honour their
snapshot, and the partition keeps being written while it is exported. Import ingests the SST file,
which RocksDB adds atomically: a crash leaves the partition either empty or whole. Everything here
blocks; callers run it in a thread.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from restate_server.rocksdb import Database, new_batch, prefix_end, write_sst
from restate_server.storage import fsm, keys
from restate_server.storage.snapshots.model import PartitionNotEmpty, SnapshotCorrupted, SnapshotError
from restate_server.storage.transaction import Transaction

DATA_FILE = "data.sst"
_CHECKPOINT_CACHE_BYTES = 1024 * 1024  # the checkpoint is read once, front to back: no cache to speak of
_DELETE_BATCH = 10_000  # rows per write batch when a failed import is rolled back
_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportedRows:
    """A partition's rows written to `path`, and what the metadata says about them."""

    path: Path
    applied_lsn: int
    rows: int
    size_bytes: int
    sha256: str


def partition_rows(db: Database, partition: int) -> Iterator[tuple[bytes, bytes]]:
    """Every row of `partition`, of every table, in key order (a skip scan over the table tags)."""
    next_tag = b""
    while True:
        first = next(db.scan(next_tag, b"\xff\xff"), None)
        if first is None:
            return
        tag = first[0][:1]
        prefix = keys.table(tag, partition)
        yield from db.scan(prefix, prefix_end(prefix))
        if tag == b"\xff":
            return
        next_tag = bytes([tag[0] + 1])


def is_empty(db: Database, partition: int) -> bool:
    return next(partition_rows(db, partition), None) is None


def applied_lsn(db: Database, partition: int) -> int:
    return fsm.get_int(Transaction(db), partition, fsm.APPLIED_LSN)


def export_rows(db: Database, partition: int, work_dir: Path) -> ExportedRows:
    """Write the partition's rows, as of one consistent point, to `work_dir/data.sst`.

    `work_dir` must not exist; it is created and holds the SST file afterwards (the caller removes it).
    """
    work_dir.mkdir(parents=True)
    checkpoint = work_dir / "checkpoint"
    sst = work_dir / DATA_FILE
    db.checkpoint(checkpoint)
    try:
        view = Database(checkpoint, read_only=True, cache_bytes=_CHECKPOINT_CACHE_BYTES)
        try:
            lsn = applied_lsn(view, partition)
            if lsn == 0:
                raise SnapshotError(f"partition {partition} has applied no record yet: nothing to snapshot")
            count = write_sst(sst, partition_rows(view, partition))
        finally:
            view.close()
    finally:
        shutil.rmtree(checkpoint, ignore_errors=True)
    size, digest = file_digest(sst)
    return ExportedRows(path=sst, applied_lsn=lsn, rows=count, size_bytes=size, sha256=digest)


def import_rows(db: Database, partition: int, sst: Path, expected_lsn: int) -> None:
    """Load an exported SST file into a store that holds no row of `partition`."""
    if not is_empty(db, partition):
        raise PartitionNotEmpty(
            f"partition {partition} already has rows in the partition store; a snapshot only restores"
            " into an empty partition"
        )
    db.ingest(sst)
    lsn = applied_lsn(db, partition)
    if lsn != expected_lsn:
        delete_partition(db, partition)
        raise SnapshotCorrupted(
            f"partition {partition}: the snapshot's rows are at applied LSN {lsn}, its metadata says"
            f" {expected_lsn}; nothing was restored"
        )


def delete_partition(db: Database, partition: int) -> None:
    """Remove every row of `partition`, in bounded batches."""
    while True:
        batch = new_batch()
        count = 0
        for key, _ in partition_rows(db, partition):
            batch.delete(key)
            count += 1
            if count == _DELETE_BATCH:
                break
        if count == 0:
            db.flush()  # the store has no WAL: make the deletes outlive a crash
            return
        db.write(batch, sync=False)


def file_digest(path: Path) -> tuple[int, str]:
    """Size and hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(_READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
