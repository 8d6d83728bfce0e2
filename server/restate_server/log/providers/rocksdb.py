"""RocksDB log provider: the shared local engine (group commit, fsync before ack) over RocksDB.

It owns its own RocksDB instance (``<node dir>/log``) whose WAL is opened with
``TolerateCorruptedTailRecords`` (as upstream's log server): a torn last write after a crash is
dropped, but corruption before the tail refuses to open instead of silently losing every later
record (RocksDB's default, point-in-time recovery, stops replaying the WAL at the first bad record).

Key layout:
- ``b"L" + partition (u16 BE) + lsn (u64 BE)`` -> encoded record
- ``b"M" + partition (u16 BE)`` -> epoch (u64 BE), sealed (u8), trim point (u64 BE)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from restate_server.log.providers.local import INLINE_SYNC_BELOW, LocalLog, Meta
from restate_server.rocksdb import Database, new_batch

_KEY = struct.Struct(">cHQ")
_META_KEY = struct.Struct(">cH")
_META = struct.Struct(">QBQ")
_LAST = 2**64 - 1


def _key(partition: int, lsn: int) -> bytes:
    return _KEY.pack(b"L", partition, lsn)


class RocksDbStorage:
    def __init__(self, db: Database) -> None:
        self._db = db

    def load(self, partition: int) -> tuple[Meta, int]:
        raw = self._db.get(_META_KEY.pack(b"M", partition))
        meta = Meta()
        if raw is not None:
            epoch, sealed, trim_point = _META.unpack(raw)
            meta = Meta(epoch=epoch, sealed=bool(sealed), trim_point=trim_point)
        last_key = self._db.last_key_before(_key(partition, _LAST), _key(partition, 0))
        last = 0 if last_key is None else _KEY.unpack(last_key)[2]
        if raw is None and last:
            # logs written before the trim point was stored: everything below the first record is gone
            first_key = next(self._db.scan(_key(partition, 0), _key(partition, _LAST)))[0]
            meta = Meta(trim_point=_KEY.unpack(first_key)[2] - 1)
        return meta, max(last, meta.trim_point) + 1

    def write(self, batches: Sequence[tuple[int, int, Sequence[bytes]]]) -> None:
        batch = new_batch()
        for partition, first, payloads in batches:
            for offset, payload in enumerate(payloads):
                batch.put(_key(partition, first + offset), payload)
        self._db.write(batch, sync=True)

    def write_meta(self, partition: int, meta: Meta) -> None:
        batch = new_batch()
        batch.put(_META_KEY.pack(b"M", partition), _META.pack(meta.epoch, meta.sealed, meta.trim_point))
        self._db.write(batch, sync=True)

    def trim(self, partition: int, meta: Meta) -> None:
        # not fsynced: losing a trim in a crash only keeps records longer, and the range delete and
        # the new trim point are in one batch, so they are never seen apart
        batch = new_batch()
        batch.delete_range(_key(partition, 0), _key(partition, meta.trim_point + 1))
        batch.put(_META_KEY.pack(b"M", partition), _META.pack(meta.epoch, meta.sealed, meta.trim_point))
        self._db.write(batch, sync=False)

    def read(self, partition: int, from_lsn: int, to_lsn: int) -> list[tuple[int, bytes]]:
        return [
            (_KEY.unpack(key)[2], value)
            for key, value in self._db.scan(_key(partition, from_lsn), _key(partition, to_lsn + 1))
        ]

    def close(self) -> None:
        """The database belongs to the caller."""


class RocksDbLog(LocalLog):
    def __init__(self, db: Database, *, inline_below: float = INLINE_SYNC_BELOW) -> None:
        super().__init__(RocksDbStorage(db), inline_below=inline_below)
