"""A read-your-writes transaction over the partition store.

The processor applies a batch of log records into one Transaction and commits it atomically,
together with the last applied LSN. Reads see the transaction's own writes first; range scans
merge them with the committed rows.

A savepoint opens a nested layer for one record: its writes stay apart until `release` folds them
into the batch, or `rollback` drops them, so a record that fails half-way leaves nothing behind
while the records before it in the batch keep their writes.
"""

from __future__ import annotations

from collections.abc import Iterator

from restate_server.rocksdb import Database, new_batch, prefix_end

_DELETED = None


class Transaction:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._writes: dict[bytes, bytes | None] = {}
        self._layer: dict[bytes, bytes | None] | None = None

    def get(self, key: bytes) -> bytes | None:
        layer = self._layer
        if layer is not None and key in layer:
            return layer[key]
        if key in self._writes:
            return self._writes[key]
        return self._db.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        (self._writes if self._layer is None else self._layer)[key] = value

    def delete(self, key: bytes) -> None:
        (self._writes if self._layer is None else self._layer)[key] = _DELETED

    def savepoint(self) -> None:
        """Start keeping writes apart until `release` or `rollback` (one level, not nested)."""
        if self._layer is not None:
            raise RuntimeError("a savepoint is already open")
        self._layer = {}

    def release(self) -> None:
        """Keep the writes made since the savepoint."""
        if self._layer is None:
            raise RuntimeError("no savepoint is open")
        self._writes.update(self._layer)
        self._layer = None

    def rollback(self) -> None:
        """Forget the writes made since the savepoint."""
        if self._layer is None:
            raise RuntimeError("no savepoint is open")
        self._layer = None

    def scan_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Rows whose key starts with prefix, in key order, including uncommitted writes."""
        return self.scan_from(prefix, prefix)

    def scan_from(self, start: bytes, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Rows with key >= start that still start with prefix, in key order, with uncommitted writes."""
        end = prefix_end(prefix)
        pending = {k: v for k, v in self._writes.items() if start <= k < end}
        if self._layer:
            pending.update((k, v) for k, v in self._layer.items() if start <= k < end)
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
        if self._layer is not None:
            raise RuntimeError("commit with an open savepoint")
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
