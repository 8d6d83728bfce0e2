"""The SQL introspection tables of invocations and the schema: upstream's names, columns and Arrow types.

Each table is a schema plus a way to answer a :class:`~.scan.Scan` with Arrow record batches from
a read-only snapshot of the partition store (or the schema registry, or the invoker's in-memory
attempt state). Large tables (:class:`ColumnarTable`: invocation status, journal) cut whole columns
out of chunks of stored rows; small ones (:class:`Table`) build rows and convert them. Both run in
a worker thread, so they only read: the RocksDB store (safe from any thread) and plain copies of
in-memory state taken on the event loop beforehand (:class:`Sources`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from restate_server.admin.query import scan as scans, status_columns
from restate_server.admin.query.scan import Scan
from restate_server.ids import InvocationId, partition_of
from restate_server.rocksdb import Database, prefix_end
from restate_server.schema import model
from restate_server.storage import keys, status
from restate_server.storage.status import InvocationStatus
from restate_server.storage.transaction import Transaction

TS = pa.timestamp("ms", tz="+00:00")  # upstream tags every timestamp column with UTC
DURATION = pa.duration("ms")
STR = pa.large_utf8()
BIN = pa.large_binary()
BIN_VIEW = pa.binary_view()
"""How ``BIN`` columns enter DataFusion (see `engine`): its sorts and joins then move 16-byte views of
the values rather than copies in its own allocator, which keeps freed copies (60 MB after sorting the
two 30 MiB entries of a payload call's journal). The cast is zero-copy; answers carry ``BIN`` again."""
U32, U64, BOOL = pa.uint32(), pa.uint64(), pa.bool_()


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptState:
    """A copy of one invocation's in-memory invoker state (upstream's ``sys_invocation_state``)."""

    in_flight: bool
    retry_count: int
    last_start_at: int | None
    next_retry_at: int | None
    last_failure: str | None
    last_failure_code: str | None
    server: str | None


Rows = list[dict[str, Any]]
Only = frozenset[bytes] | None
"""The invocation ids a query can read (see :mod:`.pushdown`); None: all of them."""
RemoteScan = Callable[[str, Scan], list[pa.Table]]
"""(table, scan) -> the rows other nodes hold (blocking; called from the query thread)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sources:
    """Everything a table builder may read; ``db`` is None when no worker runs (empty tables).

    A cluster node answers for the partitions it leads (``local``) and gets the rows of the others
    from their leaders (``remote``, see :mod:`.remote`).
    """

    db: Database | None
    num_partitions: int
    deployments: list[model.Deployment]
    services: list[model.Service]
    attempts: Mapping[bytes, AttemptState]
    local: Callable[[int], bool] = lambda _partition: True
    remote: RemoteScan | None = None

    def partitions(self, only: frozenset[int] | None = None) -> Iterator[tuple[Transaction, int]]:
        """One read-only transaction per partition this node answers for (of ``only`` when given)."""
        if self.db is None:
            return
        txn = Transaction(self.db)
        for partition in range(self.num_partitions):
            if (only is None or partition in only) and self.local(partition):
                yield txn, partition

    def partition_of(self, invocation_id: bytes) -> int:
        return partition_of(InvocationId.from_bytes(invocation_id).partition_key, self.num_partitions)

    def local_ids(self, ids: frozenset[bytes]) -> list[tuple[int, bytes]]:
        """(partition, id) of the ids whose partition this node answers for, in id order."""
        placed = ((self.partition_of(i), i) for i in sorted(ids))
        return [(partition, i) for partition, i in placed if self.local(partition)]


Builder = Callable[[Sources, Only], Rows]
BatchBuilder = Callable[[Sources, Scan], Iterator[pa.RecordBatch]]


@dataclass(frozen=True, slots=True)
class Table:
    """A small table whose builder makes Python rows (the schema registry, in-memory state)."""

    name: str
    schema: pa.Schema
    build: Builder
    partitioned: bool = True
    """Rows live in partitions (a cluster gathers them from every partition's leader); False for the
    schema's tables, which every node holds whole."""

    def batches(self, sources: Sources, scan: Scan = scans.EVERYTHING) -> Iterator[pa.RecordBatch]:
        """The table's rows as Arrow; absent keys in a row are nulls, and so are unread columns."""
        return _from_rows(self.schema, self.build(sources, scan.ids), scan)


@dataclass(frozen=True, slots=True)
class KeyedTable:
    """A table of rows stored under (service, key): the scan's service and key narrow the read to
    one key range (and, with a key, to the one partition that holds it)."""

    name: str
    schema: pa.Schema
    build: Callable[[Sources, Scan], Rows]
    partitioned: bool = True

    def batches(self, sources: Sources, scan: Scan = scans.EVERYTHING) -> Iterator[pa.RecordBatch]:
        return _from_rows(self.schema, self.build(sources, scan), scan)


def _from_rows(schema: pa.Schema, rows: Rows, scan: Scan) -> Iterator[pa.RecordBatch]:
    """Python rows as batches of ``schema``; absent keys are nulls, and so are unread columns."""
    read = schema if scan.columns is None else pa.schema([f for f in schema if f.name in scan.columns])
    built = pa.Table.from_pylist(rows, schema=read) if len(read) else None
    arrays = [
        built.column(f.name) if built is not None and f.name in read.names else pa.nulls(len(rows), f.type)
        for f in schema
    ]
    table = pa.Table.from_arrays(arrays, schema=schema)
    return scans.restrict(table.to_batches(max_chunksize=scans.BATCH_ROWS), scan)


@dataclass(frozen=True, slots=True)
class ColumnarTable:
    """A large table whose builder cuts Arrow columns out of stored rows, batch by batch."""

    name: str
    schema: pa.Schema
    build: BatchBuilder
    partitioned: bool = True

    def batches(self, sources: Sources, scan: Scan = scans.EVERYTHING) -> Iterator[pa.RecordBatch]:
        return scans.restrict(self.build(sources, scan), scan)


AnyTable = Table | ColumnarTable | KeyedTable


def schema_of(*columns: tuple[str, pa.DataType]) -> pa.Schema:
    """An Arrow schema of nullable columns (every upstream column is nullable)."""
    return pa.schema([pa.field(name, ty, nullable=True) for name, ty in columns])


# ------------------------------------------------------------------ invocation status


INVOCATION_STATUS = schema_of(
    ("partition_key", U64),
    ("id", STR),
    ("vqueue_id", STR),
    ("status", STR),
    ("completion_result", STR),
    ("completion_failure", STR),
    ("target", STR),
    ("target_service_name", STR),
    ("target_service_key", STR),
    ("target_handler_name", STR),
    ("target_service_ty", STR),
    ("scope", STR),
    ("limit_key", STR),
    ("idempotency_key", STR),
    ("invoked_by", STR),
    ("invoked_by_id", STR),
    ("invoked_by_subscription_id", STR),
    ("invoked_by_service_name", STR),
    ("invoked_by_target", STR),
    ("restarted_from", STR),
    ("pinned_deployment_id", STR),
    ("pinned_service_protocol_version", U32),
    ("trace_id", STR),
    ("journal_size", U32),
    ("journal_commands_size", U32),
    ("created_at", TS),
    ("created_using_restate_version", STR),
    ("modified_at", TS),
    ("inboxed_at", TS),
    ("scheduled_at", TS),
    ("scheduled_start_at", TS),
    ("running_at", TS),
    ("completed_at", TS),
    ("completion_retention", DURATION),
    ("journal_retention", DURATION),
    ("suspended_waiting_for_completions", pa.list_(U32)),
    ("suspended_waiting_for_signals", pa.list_(U32)),
    ("suspended_waiting_future_json", STR),
)


def statuses(src: Sources, only: Only) -> Iterator[tuple[Transaction, int, bytes, InvocationStatus]]:
    """Status rows of the selected invocations (point reads), else of all (a scan)."""
    if only is not None:  # point reads instead of a scan
        if src.db is None:
            return
        txn = Transaction(src.db)
        for partition, invocation_id in src.local_ids(only):
            st = status.get(txn, partition, invocation_id)
            if st is not None:
                yield txn, partition, invocation_id, st
        return
    for txn, partition in src.partitions():
        for invocation_id, st in status.scan(txn, partition):
            yield txn, partition, invocation_id, st


def status_chunks(
    src: Sources, scan: Scan, *, with_keys: bool = True
) -> Iterator[tuple[list[bytes] | None, list[bytes]]]:
    """Stored status rows (keys unless not ``with_keys``, values) of the scan's invocations, in chunks."""
    if src.db is None:
        return
    if scan.ids is not None:  # point reads instead of a scan
        yield from _point_reads(src.db, [keys.status(p, i) for p, i in src.local_ids(scan.ids)])
        return
    if scan.unfinished:  # the index of unfinished invocations, then point reads
        for _txn, partition in src.partitions(scan.partitions):
            index = keys.table(keys.UNFINISHED, partition)
            found = (key[len(index) :] for key, _ in src.db.scan(index, prefix_end(index)))
            yield from _point_reads(src.db, [keys.status(partition, i) for i in found])
        return
    limit = scan.limit if scan.predicate is None else None
    for _txn, partition in src.partitions(scan.partitions):
        prefix = keys.table(keys.STATUS, partition)
        chunks: Iterator[tuple[list[bytes] | None, list[bytes]]] = (
            src.db.scan_chunks(prefix, prefix_end(prefix), STATUS_CHUNK_ROWS, limit=limit)
            if with_keys
            else (
                (None, v)
                for v in src.db.scan_value_chunks(prefix, prefix_end(prefix), STATUS_CHUNK_ROWS, limit=limit)
            )
        )
        for row_keys, values in chunks:
            if limit is not None:
                limit -= len(values)
            yield row_keys, values
        if limit is not None and limit <= 0:
            return


def _point_reads(db: Database, wanted: list[bytes]) -> Iterator[tuple[list[bytes] | None, list[bytes]]]:
    """The status rows under ``wanted`` keys that exist, in chunks."""
    found = [(k, v) for k in wanted if (v := db.get(k)) is not None]
    for start in range(0, len(found), scans.BATCH_ROWS):
        part = found[start : start + scans.BATCH_ROWS]
        yield [k for k, _ in part], [v for _, v in part]


STATUS_CHUNK_ROWS = 16384
"""Status rows cut into columns at once (about 300 bytes each): few numpy steps per chunk, and a
chunk's raw rows (held twice while cut) stay a few megabytes."""


def _gathered(
    chunks: Iterator[tuple[list[bytes] | None, list[bytes]]],
) -> Iterator[tuple[list[bytes] | None, list[bytes]]]:
    """The chunks of all partitions regrouped into chunks of about ``STATUS_CHUNK_ROWS`` rows: each
    chunk costs a fixed number of numpy and Arrow steps, and partitions are often small."""
    held_keys: list[bytes] | None = None
    held: list[bytes] = []
    for row_keys, values in chunks:
        if row_keys is not None:
            held_keys = (held_keys or []) + row_keys if held else list(row_keys)
        held = held + values if held else values
        if len(held) >= STATUS_CHUNK_ROWS:
            yield held_keys, held
            held_keys, held = None, []
    if held:
        yield held_keys, held


def build_status(src: Sources, scan: Scan) -> Iterator[pa.RecordBatch]:
    """Raw invocation status rows (``sys_invocation_status``), column by column."""
    plain = scan.predicate is None and scan.ids is None and not scan.unfinished
    if plain and scan.columns == frozenset():
        yield from _counted(src, scan)
        return
    if plain and scan.columns == _STATUS_ONLY and scan.limit is None:
        yield from _statuses(src, scan)
        return
    with_keys = scan.columns is None or bool(scan.columns & status_columns.KEY_COLUMNS)
    for row_keys, values in _gathered(status_chunks(src, scan, with_keys=with_keys)):
        rows = status_columns.Rows.read(row_keys, values)
        yield status_columns.batch(rows, INVOCATION_STATUS, scan.columns, scan.predicate)


def _counted(src: Sources, scan: Scan) -> Iterator[pa.RecordBatch]:
    """Rows without columns (``count(*)``): how many there are is all a query needs, and the keys
    tell it without reading the rows (half the time of a scan of the values)."""
    if src.db is None:
        return
    total = 0
    for _txn, partition in src.partitions(scan.partitions):
        prefix = keys.table(keys.STATUS, partition)
        left = None if scan.limit is None else scan.limit - total
        total += src.db.count(prefix, prefix_end(prefix), limit=left)
    for start in range(0, total, STATUS_CHUNK_ROWS):
        yield scans.full_batch(INVOCATION_STATUS, min(STATUS_CHUNK_ROWS, total - start), {})


_STATUS_ONLY = frozenset({"status"})


def _statuses(src: Sources, scan: Scan) -> Iterator[pa.RecordBatch]:
    """Only the status of every row (``GROUP BY status``): the rows outside the index of unfinished
    invocations are completed, so only the indexed ones are read, and the others are counted by
    their keys (two thirds of the time of a scan of the values)."""
    if src.db is None:
        return
    for _txn, partition in src.partitions(scan.partitions):
        prefix = keys.table(keys.STATUS, partition)
        completed = src.db.count(prefix, prefix_end(prefix))
        index = keys.table(keys.UNFINISHED, partition)
        found = [key[len(index) :] for key, _ in src.db.scan(index, prefix_end(index))]
        for _keys, values in _point_reads(src.db, [keys.status(partition, i) for i in found]):
            yield status_columns.batch(
                status_columns.Rows.read(None, values), INVOCATION_STATUS, scan.columns
            )
            completed -= len(values)
        for start in range(0, max(0, completed), STATUS_CHUNK_ROWS):
            yield status_columns.completed(INVOCATION_STATUS, min(STATUS_CHUNK_ROWS, completed - start))


# ------------------------------------------------------------------ invocation state (in memory)

INVOCATION_STATE = schema_of(
    ("partition_key", U64),
    ("id", STR),
    ("in_flight", BOOL),
    ("retry_count", U64),
    ("last_start_at", TS),
    ("last_attempt_deployment_id", STR),
    ("last_attempt_server", STR),
    ("next_retry_at", TS),
    ("last_failure", STR),
    ("last_failure_error_code", STR),
    ("last_failure_related_command_index", U64),
    ("last_failure_related_command_name", STR),
    ("last_failure_related_command_type", STR),
    ("last_failure_related_entry_index", U64),
    ("last_failure_related_entry_name", STR),
    ("last_failure_related_entry_type", STR),
    ("last_awaiting_on_future_json", STR),
)


def build_state_of_invocations(src: Sources, only: Only) -> Rows:
    """In-memory attempt state of the invocations the invoker holds."""
    rows = []
    txn = Transaction(src.db) if src.db is not None else None
    for invocation_id, attempt in src.attempts.items():
        if only is not None and invocation_id not in only:
            continue
        inv = InvocationId.from_bytes(invocation_id)
        deployment = None
        if txn is not None:
            st = status.get(txn, partition_of(inv.partition_key, src.num_partitions), invocation_id)
            deployment = st.deployment_id if st is not None else None
        rows.append(
            {
                "partition_key": inv.partition_key,
                "id": str(inv),
                "in_flight": attempt.in_flight,
                "retry_count": attempt.retry_count,
                "last_start_at": attempt.last_start_at,
                "last_attempt_deployment_id": deployment if attempt.retry_count else None,
                "last_attempt_server": attempt.server,
                "next_retry_at": attempt.next_retry_at,
                "last_failure": attempt.last_failure,
                "last_failure_error_code": attempt.last_failure_code,
            }
        )
    return rows


# ------------------------------------------------------------------ schema registry

SERVICE = schema_of(("name", STR), ("revision", U64), ("public", BOOL), ("ty", STR), ("deployment_id", STR))
DEPLOYMENT = schema_of(
    ("id", STR),
    ("ty", STR),
    ("endpoint", STR),
    ("created_at", TS),
    ("min_service_protocol_version", U32),
    ("max_service_protocol_version", U32),
    ("services", pa.list_(STR)),
)


def build_services(src: Sources, _only: Only) -> Rows:
    """The latest revision of every registered service."""
    return [
        {
            "name": s.name,
            "revision": s.revision,
            "public": s.public,
            "ty": status_columns.SERVICE_TY[str(s.ty)],
            "deployment_id": s.deployment_id,
        }
        for s in src.services
    ]


def build_deployments(src: Sources, _only: Only) -> Rows:
    """Every registered deployment."""
    return [
        {
            "id": d.id,
            "ty": "http",
            "endpoint": d.uri,
            "created_at": d.created_at,
            "min_service_protocol_version": d.min_protocol_version,
            "max_service_protocol_version": d.max_protocol_version,
            "services": list(d.services),
        }
        for d in src.deployments
    ]
