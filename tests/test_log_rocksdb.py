"""The local log engine and its RocksDB storage beyond the shared contract: failed writes, old data, corruption."""

from __future__ import annotations

import asyncio
import glob
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from restate_server.log.api import LogCorrupted
from restate_server.log.providers.memory import MemoryLog
from restate_server.log.providers.rocksdb import RocksDbLog
from restate_server.log.records import AnnounceLeader, Invoke, Source, encode
from restate_server.rocksdb import Database, new_batch


def _invoke(n: int) -> Invoke:
    return Invoke(
        invocation_id=bytes(24),
        service="S",
        handler="h",
        key=None,
        service_ty="Service",
        handler_ty=None,
        headers=[("a", "b")],
        body=str(n).encode(),
        created_at=n,
        source=Source(kind="ingress"),
    )


class _FailOnce:
    """Makes the next storage write fail, as a full disk or a failed fsync would."""

    def __init__(self, log: MemoryLog) -> None:
        self.write = log.storage.write
        self.armed = True
        log.storage.write = self  # type: ignore[method-assign]

    def __call__(self, batches: Sequence[tuple[int, int, Sequence[bytes]]]) -> None:
        if self.armed:
            self.armed = False
            raise OSError("No space left on device")
        self.write(batches)


async def test_failed_write_fails_its_appends_and_leaves_no_gap() -> None:
    log = MemoryLog()
    await log.acquire(0, 1)
    await log.acquire(1, 1)
    assert await log.append(0, [_invoke(1)], 1) == 1
    _FailOnce(log)
    doomed = [log.submit(0, [_invoke(2)], 1), log.submit(1, [_invoke(3)], 1), log.submit(0, [_invoke(4)], 1)]
    results = await asyncio.gather(*doomed, return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    # the group commit survived; the failed LSNs are handed out again, so the log has no gap
    assert await log.append(0, [_invoke(5)], 1) == 2
    assert await log.append(1, [_invoke(6)], 1) == 1
    bodies = [r.body for _, r in await log.read(0, 1, 10) if isinstance(r, Invoke)]
    assert bodies == [b"1", b"5"]
    assert (await log.find_tail(0)).next_lsn == 3


async def test_appends_survive_reopen_with_their_content(tmp_path: Path) -> None:
    db = Database(tmp_path / "log", strict_wal=True)
    log = RocksDbLog(db)
    await log.acquire(0, 1)
    assert await log.append(0, [_invoke(1), _invoke(2)], 1) == 2
    await log.close()
    db.close()
    reopened = RocksDbLog(Database(tmp_path / "log", strict_wal=True))
    records = await reopened.read(0, 1, 2)
    first = records[0][1]
    assert isinstance(first, Invoke)
    assert (first.body, first.headers) == (b"1", [("a", "b")])


async def test_log_written_before_trim_points_were_stored_reads_as_trimmed(tmp_path: Path) -> None:
    """Old data directories trimmed by deleting records and keeping the last one; no meta key."""
    db = Database(tmp_path / "log")
    batch = new_batch()
    for lsn in (7, 8):
        batch.put(struct.pack(">cHQ", b"L", 0, lsn), encode(AnnounceLeader(leader_epoch=lsn)))
    db.write(batch, sync=True)
    log = RocksDbLog(db)
    tail = await log.find_tail(0)
    assert (tail.next_lsn, tail.trim_point, tail.epoch) == (9, 6, 0)
    assert [lsn for lsn, _ in await log.read(0, 7, 8)] == [7, 8]
    await log.close()
    db.close()


async def test_records_missing_in_the_middle_are_reported(tmp_path: Path) -> None:
    db = Database(tmp_path / "log")
    log = RocksDbLog(db)
    await log.acquire(0, 1)
    await log.append(0, [_invoke(n) for n in range(5)], 1)
    batch = new_batch()
    batch.delete(struct.pack(">cHQ", b"L", 0, 3))
    db.write(batch, sync=True)
    with pytest.raises(LogCorrupted, match=r"partition 0: records 1\.\.5"):
        await log.read(0, 1, 5)
    await log.close()
    db.close()


_WRITE_AND_DIE = """
import os, sys
from pathlib import Path
from restate_server.rocksdb import Database, new_batch
db = Database(Path(sys.argv[1]), strict_wal=True)
for n in range(300):
    batch = new_batch()
    batch.put(b"k%05d" % n, os.urandom(100))
    db.write(batch, sync=True)
os._exit(0)  # like a SIGKILL: nothing flushed, the records live in the WAL only
"""


def test_wal_corrupted_before_its_tail_refuses_to_open(tmp_path: Path) -> None:
    path = tmp_path / "log"
    subprocess.run([sys.executable, "-c", _WRITE_AND_DIE, str(path)], check=True, timeout=60)
    wal = Path(sorted(glob.glob(str(path / "*.log")))[-1])
    data = bytearray(wal.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wal.write_bytes(bytes(data))
    with pytest.raises(Exception, match="Corruption"):
        Database(path, strict_wal=True)
