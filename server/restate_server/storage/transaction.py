"""A read-your-writes transaction over the partition store.

The processor applies a batch of log records into one Transaction and commits it atomically,
together with the last applied LSN. Reads see the transaction's own writes first; range scans
merge them with the committed rows.
"""

from __future__ import annotations

from collections.abc import Iterator

from restate_server.rocksdb import Database, new_batch, prefix_end

_DELETED = None


class Transaction:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._writes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self._writes:
            return self._writes[key]
        return self._db.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._writes[key] = value

    def delete(self, key: bytes) -> None:
        self._writes[key] = _DELETED

    def scan_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Rows whose key starts with prefix, in key order, including uncommitted writes."""
        return self.scan_from(prefix, prefix)

    def scan_from(self, start: bytes, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Rows with key >= start that still start with prefix, in key order, with uncommitted writes."""
        end = prefix_end(prefix)
        pending = {k: v for k, v in self._writes.items() if start <= k < end}
        if not pending:
            yield from self._db.scan(start, end)
            return
        merged: dict[bytes, bytes | None] = dict(self._db.scan(start, end))
        merged.update(pending)
        for key in sorted(merged):
            value = merged[key]
            if value is not None:
                yield key, value

    def delete_prefix(self, prefix: bytes) -> None:
        for key, _ in list(self.scan_prefix(prefix)):
            self.delete(key)

    def commit(self) -> None:
        if not self._writes:
            return
        batch = new_batch()
        for key, value in self._writes.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self._db.write(batch, sync=False)
        self._writes = {}
