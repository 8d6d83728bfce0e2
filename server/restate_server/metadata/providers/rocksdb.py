"""The embedded metadata store of a single node: RocksDB in ``<base_dir>/metadata``.

It is a separate RocksDB instance from the partition store and the log so that its (rare, small)
writes can be fsynced without slowing theirs, and so that it can later be swapped for etcd without
touching them. Each value is stored as an 8-byte big-endian version followed by the payload.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncGenerator
from pathlib import Path

import rocksdict

from restate_server.metadata import api
from restate_server.metadata.watchers import Watchers

_VERSION = struct.Struct(">Q")


def _decode(raw: bytes) -> api.Versioned:
    (version,) = _VERSION.unpack_from(raw)
    return api.Versioned(version=version, value=raw[_VERSION.size :])


class RocksDbMetadataStore:
    """Compare-and-set over RocksDB; an asyncio lock makes check-then-write atomic in this process."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        # a WAL corrupted before its last record refuses to open instead of dropping later writes
        options.set_wal_recovery_mode(rocksdict.DBRecoveryMode.tolerate_corrupted_tail_records())
        self._db = rocksdict.Rdict(str(path), options)
        sync = rocksdict.WriteOptions()
        sync.sync = True  # acknowledged metadata must survive a power cut, as upstream's store does
        self._db.set_write_options(sync)
        self._lock = asyncio.Lock()
        self._watchers = Watchers()

    @classmethod
    def open(cls, base_dir: Path) -> RocksDbMetadataStore:
        """Open (or create) the store in its own directory under the node's base directory."""
        return cls(base_dir / "metadata")

    def _read(self, key: str) -> api.Versioned | None:
        raw = self._db.get(key.encode())
        return None if raw is None else _decode(raw)

    async def get(self, key: str) -> api.Versioned | None:
        """See :meth:`api.MetadataStore.get`."""
        return self._read(key)

    async def put(self, key: str, value: bytes, *, expected_version: int | None) -> int:
        """See :meth:`api.MetadataStore.put`; the fsync runs off the event loop."""
        async with self._lock:
            current = self._read(key)
            api.check_precondition(key, current, expected_version)
            version = (current.version if current else api.ABSENT) + 1
            await asyncio.to_thread(self._db.put, key.encode(), _VERSION.pack(version) + bytes(value))
            self._watchers.publish(
                api.Change(key=key, value=api.Versioned(version=version, value=bytes(value)))
            )
            return version

    async def delete(self, key: str, *, expected_version: int | None) -> None:
        """See :meth:`api.MetadataStore.delete`."""
        async with self._lock:
            current = self._read(key)
            api.check_precondition(key, current, expected_version)
            await asyncio.to_thread(self._db.delete, key.encode())
            if current is not None:
                self._watchers.publish(api.Change(key=key, value=None))

    def watch(self, key: str, *, prefix: bool = False) -> AsyncGenerator[api.Change, None]:
        """See :meth:`api.MetadataStore.watch`."""

        def snapshot() -> list[api.Change]:
            if not prefix:
                current = self._read(key)
                return [] if current is None else [api.Change(key=key, value=current)]
            changes = []
            it = self._db.iter()
            it.seek(key.encode())
            while it.valid() and it.key().startswith(key.encode()):
                changes.append(api.Change(key=it.key().decode(), value=_decode(it.value())))
                it.next()
            return changes

        return self._watchers.follow(key, prefix, snapshot)

    async def close(self) -> None:
        """Flush and close the database."""
        async with self._lock:
            self._db.close()
