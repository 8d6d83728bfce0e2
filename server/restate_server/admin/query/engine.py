"""Runs one SQL query with DataFusion over freshly materialised introspection tables.

A fresh ``SessionContext`` per query keeps every answer a consistent snapshot and lets memory go
with the query. Only the tables a query names are read from the store; the others are registered
empty (with their real schema), so ``information_schema`` still lists every column, which the CLI
probes before some of its queries. The catalog and schema are ``restate.public``, as upstream's,
so "table not found" errors read the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
from datafusion import SessionConfig, SessionContext

from restate_server.admin.query import catalog, pushdown, tables

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

_VIEW_NEEDS = ("sys_invocation_status", "sys_invocation_state")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SUGGESTION = re.compile(r" Did you mean '[^']*'\?")  # newer DataFusion only; upstream's has none
_BATCH_ROWS = 8192  # rows per Arrow batch of the answer; bounds the size of one streamed chunk


class QueryError(Exception):
    """A DataFusion failure, with the HTTP status upstream answers it with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Result:
    schema: pa.Schema
    batches: list[pa.RecordBatch]


def referenced_tables(sql: str) -> set[str]:
    """Tables a query may read: any known table name appearing as a word (an over-approximation)."""
    words = {w.lower() for w in _WORD.findall(sql)}
    named = {name for name in catalog.TABLES if name in words}
    if "sys_invocation" in words:
        named.update(_VIEW_NEEDS)
    return named


def execute(sql: str, sources: tables.Sources) -> Result:
    """Plan and run ``sql``; blocking (call it from a worker thread)."""
    try:
        # planned first against empty tables: errors come out before any scan, and the optimised
        # plan tells which invocation ids the query can read at all
        plan = _context(sources, set(), {}).sql(sql).optimized_logical_plan()
        ctx = _context(
            sources, referenced_tables(sql), pushdown.id_restrictions(plan), pushdown.projections(plan)
        )
        df = ctx.sql(sql)
        batches = df.collect()
        schema = batches[0].schema if batches else df.schema()  # batches may differ in nullability
    except Exception as e:
        raise _translate(e) from e
    return Result(schema=schema, batches=batches)


def _context(
    sources: tables.Sources,
    wanted: set[str],
    only: dict[str, frozenset[bytes]],
    columns: dict[str, frozenset[str]] | None = None,
) -> SessionContext:
    """A session with every table registered: the ``wanted`` ones filled, the others empty."""
    config = (
        SessionConfig()
        .with_information_schema(True)
        .with_default_catalog_and_schema("restate", "public")
        .with_batch_size(_BATCH_ROWS)
    )
    ctx = SessionContext(config)
    for name, table in catalog.TABLES.items():
        data = (
            table.materialise(sources, only.get(name), (columns or {}).get(name))
            if name in wanted
            else table.schema.empty_table()
        )
        batches = data.to_batches(max_chunksize=_BATCH_ROWS) or [pa.RecordBatch.from_pylist([], table.schema)]
        ctx.register_record_batches(name, [batches])
    ctx.sql(SYS_INVOCATION_VIEW)
    return ctx


def _translate(error: Exception) -> QueryError:
    """Upstream's status and ``Datafusion error: …`` message for a DataFusion exception.

    Upstream answers 400 only for SQL syntax errors; planning and schema errors reach it wrapped
    in diagnostics and come out as 500, like execution errors.
    """
    text = str(error).strip()
    text = text.removeprefix("DataFusion error: ")
    text = _SUGGESTION.sub("", text.replace("\n", " "))
    status = 400 if text.startswith("SQL error:") else 500
    return QueryError(status, f"Datafusion error: {text}")
