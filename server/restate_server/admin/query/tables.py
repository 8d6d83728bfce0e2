"""The SQL introspection tables of invocations and the schema: upstream's names, columns and Arrow types.

Each table is a schema plus a builder that turns a read-only snapshot of the partition store (or
the schema registry, or the invoker's in-memory attempt state) into a ``pyarrow.Table``. Builders
run in a worker thread, so they only read: the RocksDB store (safe from any thread) and plain
copies of in-memory state taken on the event loop beforehand (:class:`Sources`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from restate_server.ids import InvocationId, partition_of
from restate_server.log.records import Failure
from restate_server.rocksdb import Database
from restate_server.schema import model
from restate_server.storage import status
from restate_server.storage.status import InvocationStatus
from restate_server.storage.transaction import Transaction

TS = pa.timestamp("ms", tz="+00:00")  # upstream tags every timestamp column with UTC
DURATION = pa.duration("ms")
STR = pa.large_utf8()
BIN = pa.large_binary()
U32, U64, BOOL = pa.uint32(), pa.uint64(), pa.bool_()
RESTATE_VERSION = "1.7.12"  # what `created_using_restate_version` reports, as /version does


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
RemoteScan = Callable[[str, Only, "frozenset[str] | None"], list[pa.Table]]
"""(table, only, columns) -> the rows other nodes hold (blocking; called from the query thread)."""


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

    def partitions(self) -> Iterator[tuple[Transaction, int]]:
        """One read-only transaction per partition this node answers for."""
        if self.db is None:
            return
        txn = Transaction(self.db)
        for partition in range(self.num_partitions):
            if self.local(partition):
                yield txn, partition


Builder = Callable[[Sources, Only], Rows]


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    schema: pa.Schema
    build: Builder
    partitioned: bool = True
    """Rows live in partitions (a cluster gathers them from every partition's leader); False for the
    schema's tables, which every node holds whole."""

    def materialise(
        self, sources: Sources, only: Only = None, columns: frozenset[str] | None = None
    ) -> pa.Table:
        """The table's rows as Arrow; absent keys in a row are nulls, and so are unread `columns`."""
        rows = self.build(sources, only)
        if columns is None:
            return pa.Table.from_pylist(rows, schema=self.schema)
        read = pa.schema([f for f in self.schema if f.name in columns])
        built = pa.Table.from_pylist(rows, schema=read) if len(read) else None
        arrays = [
            built.column(f.name) if built is not None and f.name in columns else pa.nulls(len(rows), f.type)
            for f in self.schema
        ]
        return pa.Table.from_arrays(arrays, schema=self.schema)


def schema_of(*columns: tuple[str, pa.DataType]) -> pa.Schema:
    """An Arrow schema of nullable columns (every upstream column is nullable)."""
    return pa.schema([pa.field(name, ty, nullable=True) for name, ty in columns])


# ------------------------------------------------------------------ invocation status

_SERVICE_TY = {"Service": "service", "VirtualObject": "virtual_object", "Workflow": "workflow"}

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


def _result_columns(st: InvocationStatus) -> dict[str, Any]:
    if st.status != status.Status.COMPLETED or st.result is None:
        return {}
    if isinstance(st.result, Failure):
        return {
            "completion_result": "failure",
            "completion_failure": f"[{st.result.code}] {st.result.message}",
        }
    return {"completion_result": "success"}


def _caller_columns(st: InvocationStatus) -> dict[str, Any]:
    kind, caller_id, caller_target, subscription_id = (list(st.source) + [None] * 4)[:4]
    row: dict[str, Any] = {"invoked_by": kind or "ingress"}
    if caller_id is not None:
        caller_column = "restarted_from" if kind == "restart_as_new" else "invoked_by_id"
        row[caller_column] = str(InvocationId.from_bytes(caller_id))
    if caller_target is not None:
        row["invoked_by_target"] = caller_target
        row["invoked_by_service_name"] = caller_target.split("/", 1)[0]
    if subscription_id is not None:
        row["invoked_by_subscription_id"] = subscription_id
    return row


def status_row(invocation_id: bytes, st: InvocationStatus) -> dict[str, Any]:
    """One ``sys_invocation_status`` row."""
    inv = InvocationId.from_bytes(invocation_id)
    row: dict[str, Any] = {
        "partition_key": inv.partition_key,
        "id": str(inv),
        "status": st.status.value,
        "target": st.target,
        "target_service_name": st.service,
        "target_handler_name": st.handler,
        "target_service_ty": _SERVICE_TY.get(st.service_ty, st.service_ty),
        "idempotency_key": st.idempotency_key,
        "pinned_deployment_id": st.deployment_id,
        "pinned_service_protocol_version": st.protocol_version,
        "journal_size": st.journal_length,
        "journal_commands_size": st.commands,
        "created_at": st.created_at,
        "created_using_restate_version": RESTATE_VERSION,
        "modified_at": st.modified_at,
        "inboxed_at": st.inboxed_at,
        "scheduled_at": st.scheduled_at,
        "running_at": st.running_at,
        "completed_at": st.completed_at,
        "completion_retention": st.completion_retention,
        "journal_retention": st.journal_retention,
        **_result_columns(st),
        **_caller_columns(st),
    }
    if st.keyed:
        row["target_service_key"] = st.key
    if st.execute_at is not None:
        row["scheduled_start_at"] = st.execute_at
    if st.status == status.Status.SUSPENDED and st.waiting is not None:
        row["suspended_waiting_for_completions"] = list(st.waiting.completions)
        row["suspended_waiting_for_signals"] = list(st.waiting.signals)
    return row


def statuses(src: Sources, only: Only) -> Iterator[tuple[Transaction, int, bytes, InvocationStatus]]:
    """Status rows of the selected invocations (point reads), else of all (a scan)."""
    if only is not None:  # point reads instead of a scan
        if src.db is None:
            return
        txn = Transaction(src.db)
        for invocation_id in sorted(only):
            inv = InvocationId.from_bytes(invocation_id)
            partition = partition_of(inv.partition_key, src.num_partitions)
            if not src.local(partition):
                continue
            st = status.get(txn, partition, invocation_id)
            if st is not None:
                yield txn, partition, invocation_id, st
        return
    for txn, partition in src.partitions():
        for invocation_id, st in status.scan(txn, partition):
            yield txn, partition, invocation_id, st


def build_status(src: Sources, only: Only) -> Rows:
    """Raw invocation status rows (``sys_invocation_status``)."""
    return [status_row(inv, st) for _txn, _p, inv, st in statuses(src, only)]


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
            "ty": _SERVICE_TY[str(s.ty)],
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
