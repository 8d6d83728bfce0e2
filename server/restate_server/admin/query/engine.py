"""Runs one SQL query with DataFusion over freshly materialised introspection tables.

A fresh ``SessionContext`` per query keeps every answer a consistent snapshot and lets memory go
with the query. Only the tables a query names are read from the store; the others are registered
empty (with their real schema), so ``information_schema`` still lists every column, which the CLI
probes before some of its queries. The catalog and schema are ``restate.public``, as upstream's,
so "table not found" errors read the same.

Queries are read-only and bounded. DataFusion verifies the plan against ``SQLOptions`` that refuse
DDL, DML and statements (``COPY … TO``, ``CREATE``, ``INSERT``, ``SET``, ``DROP`` …) before anything
runs: 400, nothing written. Each query's runtime has a memory pool of its share of
``admin.query-engine.memory-size`` and no disk manager unless ``tmp-dir`` is set, so a sort or join
past the share fails with "Resources exhausted" instead of growing the process; the answer itself
is collected batch by batch up to the same share.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from datafusion import RuntimeEnvBuilder, SessionConfig, SessionContext, SQLOptions

from restate_server.admin.query import catalog, columns, pushdown, scan, tables

SYS_INVOCATION_VIEW = """CREATE VIEW sys_invocation AS SELECT
    ss.id, ss.vqueue_id, ss.target, ss.target_service_name, ss.target_service_key, ss.target_handler_name,
    ss.target_service_ty, ss.scope, ss.limit_key, ss.idempotency_key, ss.invoked_by,
    ss.invoked_by_service_name, ss.invoked_by_id, ss.invoked_by_subscription_id, ss.invoked_by_target,
    ss.restarted_from, ss.pinned_deployment_id, ss.pinned_service_protocol_version, ss.trace_id,
    ss.journal_size, ss.journal_commands_size, ss.created_at, ss.created_using_restate_version,
    ss.modified_at, ss.inboxed_at, ss.scheduled_at, ss.scheduled_start_at, ss.running_at,
    ss.completed_at, ss.completion_retention, ss.journal_retention,
    ss.suspended_waiting_for_completions, ss.suspended_waiting_for_signals,
    ss.suspended_waiting_future_json,
    sis.retry_count, sis.last_start_at, sis.next_retry_at, sis.last_attempt_deployment_id,
    sis.last_attempt_server, sis.last_failure, sis.last_failure_error_code,
    sis.last_failure_related_entry_index, sis.last_failure_related_entry_name,
    sis.last_failure_related_entry_type, sis.last_failure_related_command_index,
    sis.last_failure_related_command_name, sis.last_failure_related_command_type,
    sis.last_awaiting_on_future_json,
    arrow_cast(CASE
        WHEN ss.status = 'inboxed' THEN 'pending'
        WHEN ss.status = 'scheduled' THEN 'scheduled'
        WHEN ss.status = 'completed' THEN 'completed'
        WHEN ss.status = 'suspended' THEN 'suspended'
        WHEN ss.status = 'paused' THEN 'paused'
        WHEN sis.in_flight THEN 'running'
        WHEN ss.status = 'invoked' AND retry_count > 0 THEN 'backing-off'
        ELSE 'ready'
    END, 'LargeUtf8') AS status,
    ss.completion_result, ss.completion_failure
FROM sys_invocation_state sis
RIGHT JOIN sys_invocation_status ss ON ss.id = sis.id"""
"""Upstream's view: the raw status joined with the invoker's in-memory attempt state."""
SYS_INVOCATION_VIEW_WITHOUT_ATTEMPTS = SYS_INVOCATION_VIEW.replace("ON ss.id = sis.id", "ON false")
"""The same view when the invoker holds no attempt: no row can match, so the join needs no ids
(building the ``id`` column of every retained invocation only to join it with nothing is most of
the cost of ``SELECT count(*) FROM sys_invocation``)."""

_VIEW_NEEDS = ("sys_invocation_status", "sys_invocation_state")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SUGGESTION = re.compile(r" Did you mean '[^']*'\?")  # newer DataFusion only; upstream's has none
_BATCH_ROWS = 8192  # rows per Arrow batch of the answer; bounds the size of one streamed chunk
_READ_ONLY = SQLOptions().with_allow_ddl(False).with_allow_dml(False).with_allow_statements(False)
# How DataFusion words a statement refused by _READ_ONLY, or one it cannot plan at all (BEGIN …).
_REFUSED = re.compile(
    r"^Error during planning: (DDL|DML|Statement) not supported|^This feature is not implemented: "
    r"Unsupported SQL statement"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """What one query may use."""

    memory_bytes: int
    """DataFusion's memory pool for the query, and the most its collected answer may hold."""
    spill_dir: str | None = None
    """Where sorts past the pool may spill; None: no spilling, the query fails instead."""


DEFAULT_LIMITS = Limits(memory_bytes=128 * 1024 * 1024)


class QueryError(Exception):
    """A DataFusion failure, with the HTTP status upstream answers it with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Result:
    schema: pa.Schema
    """The answer's: binary columns as upstream types them."""
    batches: list[pa.RecordBatch]
    """As DataFusion made them: binary columns may be views (see `tables.BIN_VIEW`)."""

    def answer(self) -> Iterator[pa.RecordBatch]:
        """The batches as the answer types them, a piece at a time: a view column's copy as binary
        lives only while its piece is written, and holds one payload's worth at most."""
        for batch in self.batches:
            for piece in _pieces(batch):
                yield _cast(piece, tables.BIN_VIEW, tables.BIN)


def _pieces(batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
    """Consecutive slices of ``batch`` whose binary values hold ``scan.PAYLOAD_BYTES`` at most
    together (a larger value in a slice of its own)."""
    views = [column for column in batch.columns if column.type == tables.BIN_VIEW]
    if sum(column.nbytes for column in views) <= scan.PAYLOAD_BYTES:
        yield batch
        return
    sizes: list[int] = np.sum([columns.binary_lengths(column) for column in views], axis=0).tolist()
    start, held = 0, 0
    for row, size in enumerate(sizes):
        if row > start and held + size > scan.PAYLOAD_BYTES:
            yield batch.slice(start, row - start)
            start, held = row, 0
        held += size
    yield batch.slice(start)


def referenced_tables(sql: str) -> set[str]:
    """Tables a query may read: any known table name appearing as a word (an over-approximation)."""
    words = {w.lower() for w in _WORD.findall(sql)}
    named = {name for name in catalog.TABLES if name in words}
    if "sys_invocation" in words:
        named.update(_VIEW_NEEDS)
    return named


def execute(sql: str, sources: tables.Sources, limits: Limits = DEFAULT_LIMITS) -> Result:
    """Plan and run ``sql``; blocking (call it from a worker thread)."""
    try:
        # planned first against empty tables: errors and refused statements come out before any
        # scan, and the optimised plan tells which invocation ids the query can read at all
        plan = _context(sources, set(), {}, limits=limits).sql_with_options(sql, _READ_ONLY)
        optimized = plan.optimized_logical_plan()
        ctx = _context(
            sources,
            referenced_tables(sql),
            pushdown.scans(optimized),
            pushdown.id_sources(optimized),
            limits=limits,
        )
        df = ctx.sql_with_options(sql, _READ_ONLY)
        batches = _collect(df.execute_stream(), limits.memory_bytes)
        # batches may differ in nullability
        schema = _retyped(batches[0].schema if batches else df.schema(), tables.BIN_VIEW, tables.BIN)
    except QueryError:
        raise
    except Exception as e:
        raise _translate(e) from e
    return Result(schema=schema, batches=batches)


def _collect(stream: Iterable[Any], budget: int) -> list[pa.RecordBatch]:
    """The answer's batches, refused once they hold more than ``budget`` bytes."""
    batches: list[pa.RecordBatch] = []
    held = 0
    for item in stream:
        batch: pa.RecordBatch = item.to_pyarrow()
        held += batch.get_total_buffer_size()
        if held > budget:
            raise _exhausted(budget, "the answer holds")
        batches.append(batch)
    return batches


def _retyped(schema: pa.Schema, old: pa.DataType, new: pa.DataType) -> pa.Schema:
    return pa.schema([field.with_type(new) if field.type == old else field for field in schema])


def _cast(batch: pa.RecordBatch, old: pa.DataType, new: pa.DataType) -> pa.RecordBatch:
    schema = _retyped(batch.schema, old, new)
    return batch if schema == batch.schema else batch.cast(schema)


def _context(
    sources: tables.Sources,
    wanted: set[str],
    reads: dict[str, scan.Scan],
    id_sources: dict[str, str] | None = None,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> SessionContext:
    """A session with every table registered: the ``wanted`` ones filled, the others empty.

    What a table yields for its scan is held in memory until the query runs (DataFusion's Python
    API takes no lazily pulled batches: a ``RecordBatchReader`` or a ``pyarrow`` dataset over one is
    read whole when registered), so it counts against the query's memory share: a scan that
    would hold more fails with "Resources exhausted" instead of growing the process.
    """
    config = (
        SessionConfig()
        .with_information_schema(True)
        .with_default_catalog_and_schema("restate", "public")
        .with_batch_size(_BATCH_ROWS)
    )
    runtime = RuntimeEnvBuilder().with_fair_spill_pool(limits.memory_bytes)
    if limits.spill_dir is None:
        runtime = runtime.with_disk_manager_disabled()
    else:
        runtime = runtime.with_disk_manager_specified(limits.spill_dir)
    ctx = SessionContext(config, runtime)
    read_batches: dict[str, list[pa.RecordBatch]] = {}
    budget = _Budget(limits.memory_bytes)
    # tables restricted by another table's ids come after it
    order = sorted(catalog.TABLES, key=lambda n: n in (id_sources or {}) and _restricts(reads, id_sources, n))
    for name in order:
        table = catalog.TABLES[name]
        batches: list[pa.RecordBatch] = []
        if name in wanted:
            read = reads.get(name, scan.EVERYTHING)
            source = (id_sources or {}).get(name)
            if source is not None and source in read_batches and _restricts(reads, id_sources, name):
                read = _with_ids(read, read_batches[source])
            for batch in _gather(table, sources, read):
                budget.add(_size(batch, read.columns))
                batches.append(batch)
        read_batches[name] = batches
        viewed = [_cast(batch, tables.BIN, tables.BIN_VIEW) for batch in batches]  # zero-copy
        empty = pa.RecordBatch.from_pylist([], _retyped(table.schema, tables.BIN, tables.BIN_VIEW))
        ctx.register_record_batches(name, [viewed or [empty]])
    # other nodes' attempts are not known here: only a single node can tell that none is held
    held = sources.attempts or sources.remote is not None
    view = SYS_INVOCATION_VIEW if held else SYS_INVOCATION_VIEW_WITHOUT_ATTEMPTS
    ctx.sql(view)  # the one DDL statement: ours, before any of the caller's
    return ctx


def _gather(table: tables.AnyTable, sources: tables.Sources, read: scan.Scan) -> Iterator[pa.RecordBatch]:
    """This node's rows of the table, and in a cluster those the leaders of other partitions hold."""
    yield from table.batches(sources, read)
    if sources.remote is not None and table.partitioned:
        for data in sources.remote(table.name, read):
            yield from scan.restrict(data.to_batches(max_chunksize=scan.BATCH_ROWS), read)


class _Budget:
    """Bytes the tables of one query hold, refused past its memory share."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def add(self, size: int) -> None:
        self.held += size
        if self.held > self.limit:
            raise _exhausted(self.limit, "the tables it reads hold")


def _restricts(reads: dict[str, scan.Scan], id_sources: dict[str, str] | None, name: str) -> bool:
    """Whether ``name``'s ids come from its join partner: the partner's own scan is restricted."""
    source = (id_sources or {}).get(name)
    if source is None:
        return False
    mine, theirs = reads.get(name, scan.EVERYTHING), reads.get(source, scan.EVERYTHING)
    if theirs.columns is not None and "id" not in theirs.columns:
        return False  # the partner's ids are not read
    partner_restricted = theirs.ids is not None or theirs.predicate is not None or theirs.limit is not None
    # of two restricted partners, the one read first restricts the other (alphabetical: stable)
    if mine.ids is not None or mine.predicate is not None:
        return partner_restricted and name > source
    return partner_restricted


def _with_ids(read: scan.Scan, partner: list[pa.RecordBatch]) -> scan.Scan:
    """The scan restricted to the ids its join partner's rows carry (intersected with its own)."""
    texts = {text for batch in partner for text in batch.column("id").to_pylist() if text is not None}
    ids = pushdown.parse_ids(texts)
    if read.ids is not None:
        ids &= read.ids
    return dataclasses.replace(read, ids=ids)


def _size(batch: pa.RecordBatch, columns: frozenset[str] | None) -> int:
    """Bytes a batch holds in the columns read (unread ones are shared all-null arrays)."""
    return sum(
        batch.column(i).get_total_buffer_size()
        for i, name in enumerate(batch.schema.names)
        if columns is None or name in columns
    )


def _exhausted(budget: int, what: str) -> QueryError:
    return QueryError(
        500,
        f"Datafusion error: Resources exhausted: {what} more than {budget} bytes "
        "(admin.query-engine.memory-size); select fewer rows or columns",
    )


def _translate(error: Exception) -> QueryError:
    """Upstream's status and ``Datafusion error: …`` message for a DataFusion exception.

    Upstream answers 400 only for SQL syntax errors; planning and schema errors reach it wrapped
    in diagnostics and come out as 500, like execution errors. A statement that is not a query is
    the client's mistake too: 400.
    """
    text = str(error).strip()
    text = text.removeprefix("DataFusion error: ")
    text = _SUGGESTION.sub("", text.replace("\n", " "))
    if _REFUSED.match(text):
        return QueryError(400, f"Datafusion error: {text}; /query runs read-only queries only")
    status = 400 if text.startswith("SQL error:") else 500
    return QueryError(status, f"Datafusion error: {text}")
