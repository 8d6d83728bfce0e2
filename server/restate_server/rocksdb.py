"""The node's one RocksDB instance, shared by the log provider and the partition store.

Upstream keeps a RocksDB manager crate for the same reason: one block cache, one WAL, one place
that decides options. Log appends are written with `sync=True` (they are what we acknowledge);
partition-store writes skip the fsync because the log can rebuild them (the store records the last
applied LSN in the same atomic batch).

A full disk (ENOSPC): a write or a memtable flush that fails turns into a RocksDB background error,
and every write fails until the DB resumes. rocksdict (0.3) exposes neither `Resume()` nor an
`SstFileManager`, and needs neither: RocksDB gives every DB a default `SstFileManager`, whose error
recovery polls the free space and resumes the DB by itself once space is back (the failed flush is
redone, nothing written before is lost; seconds after space returns, with the WAL and without it).
Callers only have to retry: the log fails the appends (their callers back off), the partition
processor retries its commit.
"""

from __future__ import annotations

import itertools
import operator
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from rocksdict import (
    AccessType,
    BlockBasedOptions,
    Cache,
    Checkpoint,
    DBCompressionType,
    DBRecoveryMode,
    IngestExternalFileOptions,
    Options,
    Rdict,
    ReadOptions,
    SstFileWriter,
    WriteBatch,
    WriteOptions,
)

from restate_server import memory

BLOB_MIN_BYTES = 64 * 1024


class Database:
    """A raw-bytes RocksDB handle with the two write modes the node needs."""

    def __init__(
        self,
        path: Path,
        *,
        wal: bool = True,
        cache_bytes: int = 8 * 1024 * 1024,
        write_buffer_bytes: int = 8 * 1024 * 1024,
        strict_wal: bool = False,
        read_only: bool = False,
    ) -> None:
        self._read_only = read_only
        self._closed = False
        self._closing = threading.Lock()
        if not read_only:
            path.mkdir(parents=True, exist_ok=True)
        opts = Options(raw_mode=True)
        opts.create_if_missing(not read_only)
        # Small footprint: the defaults are tuned for servers with gigabytes to spare.
        opts.set_write_buffer_size(write_buffer_bytes)
        table = BlockBasedOptions()
        table.set_block_cache(Cache(cache_bytes))  # RocksDB's default is 32 MiB per database
        table.set_bloom_filter(10, False)  # point reads (status, fsm) skip SST files without the key
        opts.set_block_based_table_factory(table)
        # Values of 64 KiB and more (large inputs, outputs, journal entries, log records) go to blob
        # files: the SST files keep small pointers, so flushes and compactions do not rewrite
        # megabytes of payload again and again, and reads of everything else stay fast after them.
        opts.set_enable_blob_files(True)
        opts.set_min_blob_size(BLOB_MIN_BYTES)
        opts.set_blob_compression_type(DBCompressionType.lz4())  # cheap; payloads are often JSON
        opts.set_enable_blob_gc(True)
        opts.set_max_write_buffer_number(2)
        opts.set_keep_log_file_num(2)
        opts.set_max_log_file_size(1024 * 1024)
        # RocksDB's statistics (WAL sync and write latencies, bytes) feed `/metrics`, as upstream's do.
        opts.enable_statistics()
        self._opts = opts
        if strict_wal:
            # Refuse to open when the WAL is corrupt anywhere but a torn last record; RocksDB's
            # default (point in time) silently drops everything after the first bad record.
            opts.set_wal_recovery_mode(DBRecoveryMode.tolerate_corrupted_tail_records())
        access = AccessType.read_only() if read_only else AccessType.read_write()
        self._db = Rdict(str(path), opts, access_type=access)
        self._sync = WriteOptions()
        self._sync.sync = True
        self._nosync = WriteOptions()
        self._nosync.sync = False
        # Without a WAL, unflushed writes are lost on a crash; only for stores the log can rebuild.
        self._nosync.disable_wal = not wal  # type: ignore[method-assign,assignment]  # a property at runtime

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def write(self, batch: WriteBatch, *, sync: bool) -> None:
        large = batch.size_in_bytes() >= memory.LARGE_WRITE_BYTES  # asked before: writing consumes it
        self._db.write(batch, write_opt=self._sync if sync else self._nosync)
        if large:
            memory.trim_soon()  # flushed then, the memtable lets go of it (see `release_memory`)

    def scan(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Keys in [start, end), in order."""
        it = self._db.iter()
        it.seek(start)
        while it.valid():
            key = it.key()
            if key >= end:
                break
            yield key, it.value()
            it.next()

    def count(self, start: bytes, end: bytes, *, limit: int | None = None) -> int:
        """How many keys lie in [start, end), at most ``limit``: no value is handed to Python."""
        bounds = ReadOptions()
        bounds.set_iterate_upper_bound(end)
        return sum(1 for _ in itertools.islice(self._db.keys(from_key=start, read_opt=bounds), limit))

    def scan_value_chunks(
        self, start: bytes, end: bytes, size: int, *, limit: int | None = None
    ) -> Iterator[list[bytes]]:
        """Like `scan_chunks`, values only (cheaper when the keys are not needed)."""
        bounds = ReadOptions()
        bounds.set_iterate_upper_bound(end)
        values: Iterator[bytes] = self._db.values(from_key=start, read_opt=bounds)
        left = limit
        while left is None or left > 0:
            chunk = list(itertools.islice(values, size if left is None else min(size, left)))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk

    def scan_chunks(
        self, start: bytes, end: bytes, size: int, *, limit: int | None = None, max_bytes: int | None = None
    ) -> Iterator[tuple[list[bytes], list[bytes]]]:
        """Keys and values in [start, end), in order, ``size`` rows per chunk (at most ``limit`` rows).

        The iteration runs inside rocksdict, without a Python call per row: what bulk readers such
        as SQL scans want. With ``max_bytes`` a chunk also ends once its values hold that many bytes
        (rows are then counted one by one: for tables of large rows).
        """
        bounds = ReadOptions()
        bounds.set_iterate_upper_bound(end)
        rows: Iterator[tuple[bytes, bytes]] = self._db.items(from_key=start, read_opt=bounds)  # type: ignore[assignment]
        if max_bytes is not None:
            yield from _byte_bounded(rows, size, max_bytes, limit)
            return
        left = limit
        while left is None or left > 0:
            chunk = list(itertools.islice(rows, size if left is None else min(size, left)))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield list(map(_KEY, chunk)), list(map(_VALUE, chunk))  # a third of zip(*chunk)'s time

    def last_key_before(self, end: bytes, start: bytes) -> bytes | None:
        """The greatest key in [start, end), or None."""
        it = self._db.iter()
        it.seek_for_prev(end)
        while it.valid():
            key: bytes = it.key()
            if key < start:
                return None
            if key < end:
                return key
            it.prev()
        return None

    def flush(self) -> None:
        self._db.flush()

    def property_int(self, name: str) -> int | None:
        """A RocksDB integer property (`rocksdb.estimate-live-data-size`, ...), None if unknown."""
        value: int | None = self._db.property_int_value(name)
        return value

    def statistics(self) -> str | None:
        """RocksDB's statistics dump (tickers and histograms)."""
        text: str | None = self._opts.get_statistics()
        return text

    def checkpoint(self, path: Path) -> None:
        """A consistent copy of the whole database at `path` (a new directory), as of now.

        The memtables are flushed first, so writes made without the WAL are included; on the same
        filesystem the SST files are hard links, so it costs a flush and no copy.
        """
        Checkpoint(self._db).create_checkpoint(str(path))

    def ingest(self, sst: Path) -> None:
        """Add every row of an SST file written by `write_sst`, atomically (the file is moved in)."""
        opts = IngestExternalFileOptions()
        opts.set_move_files(True)
        self._db.ingest_external_file([str(sst)], opts)

    def release_memory(self) -> None:
        """Flush the memtables (see `memory.hold`): a large value written last stays in a memtable,
        in memory, until the next write switches it; flushed, it moves to a blob file on disk."""
        with self._closing:
            if not self._closed and not self._read_only:
                self._db.flush(wait=True)

    def close(self) -> None:
        with self._closing:  # not while `release_memory` flushes from a worker thread
            if not self._read_only:
                self._db.flush()
            self._db.close()
            self._closed = True


_KEY, _VALUE = operator.itemgetter(0), operator.itemgetter(1)


def _byte_bounded(
    rows: Iterator[tuple[bytes, bytes]], size: int, max_bytes: int, limit: int | None
) -> Iterator[tuple[list[bytes], list[bytes]]]:
    keys: list[bytes] = []
    values: list[bytes] = []
    held = 0
    for key, value in rows:
        keys.append(key)
        values.append(value)
        held += len(value)
        if limit is not None:
            limit -= 1
        if len(keys) >= size or held >= max_bytes or limit == 0:
            yield keys, values
            keys, values, held = [], [], 0
            if limit == 0:
                return
    if keys:
        yield keys, values


def new_batch() -> WriteBatch:
    return WriteBatch(raw_mode=True)


def write_sst(path: Path, rows: Iterable[tuple[bytes, bytes]]) -> int:
    """Write rows (keys strictly increasing) to a zstd-compressed SST file; returns the row count.

    Nothing is written for no rows (RocksDB refuses an empty SST file).
    """
    opts = Options(raw_mode=True)
    opts.set_compression_type(DBCompressionType.zstd())
    writer: SstFileWriter | None = None
    count = 0
    for key, value in rows:
        if writer is None:
            writer = SstFileWriter(options=opts)
            writer.open(str(path))
        writer[key] = value
        count += 1
    if writer is not None:
        writer.finish()
    return count


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with `prefix`."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b"\xff" * (len(prefix) + 1)
    return stripped[:-1] + bytes([stripped[-1] + 1])
