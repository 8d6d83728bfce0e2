"""A read-your-writes transaction over the partition store.

The processor applies a batch of log records into one Transaction and commits it atomically,
together with the last applied LSN. Reads see the transaction's own writes first; range scans
merge them with the committed rows.

A savepoint opens a nested layer for one record: its writes stay apart until `release` folds them
into the batch, or `rollback` drops them, so a record that fails half-way leaves nothing behind
while the records before it in the batch keep their writes.

Pending writes are grouped by table (the first `_TABLE` bytes of every key, see `storage.keys`):
a scan merges only its own table's writes, not every write of the batch.
"""

from __future__ import annotations

from collections.abc import Iterator

from restate_server.rocksdb import Database, new_batch, prefix_end

_TABLE = 3  # table tag (1 byte) + partition (u16): a scan never crosses it
_DELETED = None

Rows = dict[bytes, bytes | None]  # key -> value, or _DELETED


class Transaction:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._writes: dict[bytes, Rows] = {}  # table -> its pending rows
        self._layer: dict[bytes, Rows] | None = None  # the open savepoint's, same shape

    def get(self, key: bytes) -> bytes | None:
        table = key[:_TABLE]
        if self._layer is not None:
            rows = self._layer.get(table)
            if rows is not None and key in rows:
                return rows[key]
        rows = self._writes.get(table)
        if rows is not None and key in rows:
            return rows[key]
        return self._db.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._write(key, value)

    def delete(self, key: bytes) -> None:
        self._write(key, _DELETED)

    def _write(self, key: bytes, value: bytes | None) -> None:
        tables = self._writes if self._layer is None else self._layer
        table = key[:_TABLE]
        rows = tables.get(table)
        if rows is None:
            rows = tables[table] = {}
        rows[key] = value

    def savepoint(self) -> None:
        """Start keeping writes apart until `release` or `rollback` (one level, not nested)."""
        if self._layer is not None:
            raise RuntimeError("a savepoint is already open")
        self._layer = {}

    def release(self) -> None:
        """Keep the writes made since the savepoint."""
        if self._layer is None:
            raise RuntimeError("no savepoint is open")
        for table, rows in self._layer.items():
            batch_rows = self._writes.get(table)
            if batch_rows is None:
                self._writes[table] = rows
            else:
                batch_rows.update(rows)
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
        return self.scan_between(start, prefix_end(prefix))

    def scan_between(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Rows with start <= key < end, in key order, with uncommitted writes.

        Committed rows stream from a RocksDB iterator; the pending writes of the range are merged in
        as it goes, so a long range costs memory only for the writes of this transaction.
        """
        pending: Rows = {}
        for tables in (self._writes, self._layer or {}):
            for table, rows in tables.items():
                if table < end and prefix_end(table) > start:
                    pending.update((k, v) for k, v in rows.items() if start <= k < end)
        if not pending:
            yield from self._db.scan(start, end)
            return
        ordered = sorted(pending.items())
        i = 0
        for key, value in self._db.scan(start, end):
            while i < len(ordered) and ordered[i][0] < key:
                mine, written = ordered[i]
                i += 1
                if written is not None:
                    yield mine, written
            if i < len(ordered) and ordered[i][0] == key:
                written = ordered[i][1]
                i += 1
                if written is not None:
                    yield key, written
                continue
            yield key, value
        for mine, written in ordered[i:]:
            if written is not None:
                yield mine, written

    def delete_prefix(self, prefix: bytes) -> None:
        for key, _ in list(self.scan_prefix(prefix)):
            self.delete(key)

    def commit(self) -> None:
        if self._layer is not None:
            raise RuntimeError("commit with an open savepoint")
        if not self._writes:
            return
        batch = new_batch()
        for rows in self._writes.values():
            for key, value in rows.items():
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
        self._db.write(batch, sync=False)
        self._writes = {}
