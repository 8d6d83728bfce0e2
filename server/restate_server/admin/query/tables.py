"""The SQL introspection tables: upstream's names, columns and Arrow types, built from the store.

Each table is a schema plus a builder that turns a read-only snapshot of the partition store (or
the schema registry, or the invoker's in-memory attempt state) into a ``pyarrow.Table``. Builders
run in a worker thread, so they only read: the RocksDB store (safe from any thread) and plain
copies of in-memory state taken on the event loop beforehand (:class:`Sources`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import pyarrow as pa

from restate_server.ids import InvocationId, partition_key_for, partition_of
from restate_server.protocol import codec, messages
from restate_server.rocksdb import Database
from restate_server.schema import model
from restate_server.storage import journal, keys, status
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Sources:
    """Everything a table builder may read; ``db`` is None when no worker runs (empty tables)."""

    db: Database | None
    num_partitions: int
    deployments: list[model.Deployment]
    services: list[model.Service]
    attempts: Mapping[bytes, AttemptState]

    def partitions(self) -> Iterator[tuple[Transaction, int]]:
        """One read-only transaction per partition."""
        if self.db is None:
            return
        txn = Transaction(self.db)
        for partition in range(self.num_partitions):
            yield txn, partition


Rows = list[dict[str, Any]]
Only = frozenset[bytes] | None
"""The invocation ids a query can read (see :mod:`.pushdown`); None: all of them."""
Builder = Callable[[Sources, Only], Rows]


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    schema: pa.Schema
    build: Builder

    def materialise(self, sources: Sources, only: Only = None) -> pa.Table:
        """The table's rows as Arrow; absent keys in a row are nulls."""
        return pa.Table.from_pylist(self.build(sources, only), schema=self.schema)


def _schema(*columns: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, ty, nullable=True) for name, ty in columns])


# ------------------------------------------------------------------ invocation status

_SERVICE_TY = {"Service": "service", "VirtualObject": "virtual_object", "Workflow": "workflow"}

INVOCATION_STATUS = _schema(
    ("partition_key", U64), ("id", STR), ("vqueue_id", STR), ("status", STR),
    ("completion_result", STR), ("completion_failure", STR), ("target", STR),
    ("target_service_name", STR), ("target_service_key", STR), ("target_handler_name", STR),
    ("target_service_ty", STR), ("scope", STR), ("limit_key", STR), ("idempotency_key", STR),
    ("invoked_by", STR), ("invoked_by_id", STR), ("invoked_by_subscription_id", STR),
    ("invoked_by_service_name", STR), ("invoked_by_target", STR), ("restarted_from", STR),
    ("pinned_deployment_id", STR), ("pinned_service_protocol_version", U32), ("trace_id", STR),
    ("journal_size", U32), ("journal_commands_size", U32), ("created_at", TS),
    ("created_using_restate_version", STR), ("modified_at", TS), ("inboxed_at", TS),
    ("scheduled_at", TS), ("scheduled_start_at", TS), ("running_at", TS), ("completed_at", TS),
    ("completion_retention", DURATION), ("journal_retention", DURATION),
    ("suspended_waiting_for_completions", pa.list_(U32)), ("suspended_waiting_for_signals", pa.list_(U32)),
    ("suspended_waiting_future_json", STR),
)


def _result_columns(st: InvocationStatus) -> dict[str, Any]:
    if st.status != status.COMPLETED or st.result is None:
        return {}
    if st.result[0] == "value":
        return {"completion_result": "success"}
    code, message = st.result[1], st.result[2]
    return {"completion_result": "failure", "completion_failure": f"[{code}] {message}"}


def _caller_columns(st: InvocationStatus) -> dict[str, Any]:
    kind, caller_id, caller_target, subscription_id = (list(st.source) + [None] * 4)[:4]
    row: dict[str, Any] = {"invoked_by": kind or "ingress"}
    if caller_id is not None:
        row["invoked_by_id"] = str(InvocationId.from_bytes(caller_id))
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
        "partition_key": inv.partition_key, "id": str(inv), "status": st.status, "target": st.target,
        "target_service_name": st.service, "target_handler_name": st.handler,
        "target_service_ty": _SERVICE_TY.get(st.service_ty, st.service_ty),
        "idempotency_key": st.idempotency_key, "pinned_deployment_id": st.deployment_id,
        "pinned_service_protocol_version": st.protocol_version, "journal_size": st.journal_length,
        "journal_commands_size": st.commands, "created_at": st.created_at,
        "created_using_restate_version": RESTATE_VERSION, "modified_at": st.modified_at,
        "inboxed_at": st.inboxed_at, "scheduled_at": st.scheduled_at, "running_at": st.running_at,
        "completed_at": st.completed_at, "completion_retention": st.completion_retention,
        "journal_retention": st.journal_retention,
        **_result_columns(st), **_caller_columns(st),
    }
    if st.keyed:
        row["target_service_key"] = st.key
    if st.execute_at is not None:
        row["scheduled_start_at"] = st.execute_at
    if st.status == status.SUSPENDED and st.waiting is not None:
        row["suspended_waiting_for_completions"] = list(st.waiting[0] or [])
        row["suspended_waiting_for_signals"] = list(st.waiting[1] or [])
    return row


def _statuses(src: Sources, only: Only) -> Iterator[tuple[Transaction, int, bytes, InvocationStatus]]:
    if only is not None:  # point reads instead of a scan
        if src.db is None:
            return
        txn = Transaction(src.db)
        for invocation_id in sorted(only):
            inv = InvocationId.from_bytes(invocation_id)
            partition = partition_of(inv.partition_key, src.num_partitions)
            st = status.get(txn, partition, invocation_id)
            if st is not None:
                yield txn, partition, invocation_id, st
        return
    for txn, partition in src.partitions():
        for invocation_id, st in status.scan(txn, partition):
            yield txn, partition, invocation_id, st


def _build_status(src: Sources, only: Only) -> Rows:
    return [status_row(inv, st) for _txn, _p, inv, st in _statuses(src, only)]


# ------------------------------------------------------------------ invocation state (in memory)

INVOCATION_STATE = _schema(
    ("partition_key", U64), ("id", STR), ("in_flight", BOOL), ("retry_count", U64), ("last_start_at", TS),
    ("last_attempt_deployment_id", STR), ("last_attempt_server", STR), ("next_retry_at", TS),
    ("last_failure", STR), ("last_failure_error_code", STR),
    ("last_failure_related_command_index", U64), ("last_failure_related_command_name", STR),
    ("last_failure_related_command_type", STR), ("last_failure_related_entry_index", U64),
    ("last_failure_related_entry_name", STR), ("last_failure_related_entry_type", STR),
    ("last_awaiting_on_future_json", STR),
)


def _build_state_of_invocations(src: Sources, only: Only) -> Rows:
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
        rows.append({
            "partition_key": inv.partition_key, "id": str(inv), "in_flight": attempt.in_flight,
            "retry_count": attempt.retry_count, "last_start_at": attempt.last_start_at,
            "last_attempt_deployment_id": deployment if attempt.retry_count else None,
            "last_attempt_server": attempt.server, "next_retry_at": attempt.next_retry_at,
            "last_failure": attempt.last_failure, "last_failure_error_code": attempt.last_failure_code,
        })
    return rows


# ------------------------------------------------------------------ schema registry

SERVICE = _schema(("name", STR), ("revision", U64), ("public", BOOL), ("ty", STR), ("deployment_id", STR))
DEPLOYMENT = _schema(
    ("id", STR), ("ty", STR), ("endpoint", STR), ("created_at", TS), ("min_service_protocol_version", U32),
    ("max_service_protocol_version", U32), ("services", pa.list_(STR)),
)


def _build_services(src: Sources, _only: Only) -> Rows:
    return [
        {"name": s.name, "revision": s.revision, "public": s.public, "ty": _SERVICE_TY[str(s.ty)],
         "deployment_id": s.deployment_id}
        for s in src.services
    ]


def _build_deployments(src: Sources, _only: Only) -> Rows:
    return [
        {"id": d.id, "ty": "http", "endpoint": d.uri, "created_at": d.created_at,
         "min_service_protocol_version": d.min_protocol_version,
         "max_service_protocol_version": d.max_protocol_version, "services": list(d.services)}
        for d in src.deployments
    ]


# ------------------------------------------------------------------ keyed tables

STATE = _schema(
    ("partition_key", U64), ("scope", STR), ("service_name", STR), ("service_key", STR), ("key", STR),
    ("key_length", U64), ("value_utf8", STR), ("value", BIN), ("value_length", U64),
)
KEYED_SERVICE_STATUS = _schema(
    ("partition_key", U64), ("service_name", STR), ("service_key", STR), ("invocation_id", STR),
)
INBOX = _schema(
    ("partition_key", U64), ("service_name", STR), ("service_key", STR), ("id", STR),
    ("sequence_number", U64), ("created_at", TS),
)
PROMISE = _schema(
    ("partition_key", U64), ("scope", STR), ("service_name", STR), ("service_key", STR), ("key", STR),
    ("completed", BOOL), ("completion_success_value", BIN), ("completion_success_value_utf8", STR),
    ("completion_failure", STR),
)


def _keyed_rows(src: Sources, tag: bytes) -> Iterator[tuple[Transaction, str, str, bytes, bytes]]:
    """(txn, service, key, rest of the row key, value) of every row of a keyed table."""
    for txn, partition in src.partitions():
        prefix = keys.table(tag, partition)
        for row_key, value in txn.scan_prefix(prefix):
            service, key, rest = keys.split_service_key(row_key[len(prefix):])
            yield txn, service, key, rest, value


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


def _build_state(src: Sources, _only: Only) -> Rows:
    rows = []
    for _txn, service, key, name, value in _keyed_rows(src, keys.STATE):
        rows.append({
            "partition_key": partition_key_for(key), "service_name": service, "service_key": key,
            "key": name.decode(errors="replace"), "key_length": len(name), "value_utf8": _utf8(value),
            "value": value, "value_length": len(value),
        })
    return rows


def _build_locks(src: Sources, _only: Only) -> Rows:
    return [
        {"partition_key": partition_key_for(key), "service_name": service, "service_key": key,
         "invocation_id": str(InvocationId.from_bytes(value))}
        for _txn, service, key, _rest, value in _keyed_rows(src, keys.LOCK)
    ]


def _build_inbox(src: Sources, _only: Only) -> Rows:
    rows = []
    for txn, service, key, rest, value in _keyed_rows(src, keys.INBOX):
        inv = InvocationId.from_bytes(value)
        st = status.get(txn, partition_of(inv.partition_key, src.num_partitions), value)
        rows.append({
            "partition_key": inv.partition_key, "service_name": service, "service_key": key, "id": str(inv),
            "sequence_number": keys.read_u64(rest), "created_at": st.created_at if st is not None else None,
        })
    return rows


def _build_promises(src: Sources, _only: Only) -> Rows:
    rows = []
    for _txn, service, key, rest, value in _keyed_rows(src, keys.PROMISE):
        name = rest.decode()
        result = dict(msgpack.unpackb(value, raw=False)).get("result")
        row: dict[str, Any] = {"partition_key": partition_key_for(key), "service_name": service,
                               "service_key": key, "key": name, "completed": result is not None}
        if result is not None and result[0] == "value":
            row["completion_success_value"] = result[1]
            row["completion_success_value_utf8"] = _utf8(result[1])
        elif result is not None:
            row["completion_failure"] = f"[{result[1]}] {result[2]}"
        rows.append(row)
    return rows


# ------------------------------------------------------------------ journal

JOURNAL = _schema(
    ("partition_key", U64), ("id", STR), ("index", U32), ("entry_type", STR), ("name", STR),
    ("completed", BOOL), ("invoked_id", STR), ("invoked_target", STR), ("sleep_wakeup_at", TS),
    ("promise_name", STR), ("raw", BIN), ("raw_length", U64), ("version", U32), ("entry_json", STR),
    ("entry_lite_json", STR), ("appended_at", TS),
)
JOURNAL_EVENTS = _schema(
    ("partition_key", U64), ("id", STR), ("after_journal_entry_index", U32), ("appended_at", TS),
    ("event_type", STR), ("event_json", STR),
)


def entry_type_name(message_type: int) -> str:
    """Upstream's journal v2 entry type label, e.g. ``Command: Sleep`` or ``Notification: Signal``."""
    try:
        member = messages.MessageType(message_type)
    except ValueError:
        return f"Unknown: 0x{message_type:04x}"
    if member is messages.MessageType.SIGNAL_NOTIFICATION:
        return "Notification: Signal"
    words = member.name.split("_")
    kind, words = ("Command", words[:-1]) if words[-1] == "COMMAND" else ("Notification", words[:-1])
    camel = "".join("Id" if w == "ID" else w.capitalize() for w in words)
    return f"{kind}: {camel}"


def _entry_details(type_: int, payload: bytes) -> dict[str, Any]:
    """Name, promise key and sleep wake-up time of a command (what the CLI shows)."""
    try:
        message = codec.decode_frame(codec.Frame(type_, 0, payload))
    except Exception:  # an undecodable entry is still listed, without details (upstream logs it)
        return {}
    row: dict[str, Any] = {}
    name = getattr(message, "name", None)
    row["name"] = name if isinstance(name, str) else ""
    if type_ == messages.MessageType.SLEEP_COMMAND:
        row["sleep_wakeup_at"] = int(getattr(message, "wake_up_time", 0))
    if type_ in (messages.MessageType.GET_PROMISE_COMMAND, messages.MessageType.PEEK_PROMISE_COMMAND,
                 messages.MessageType.COMPLETE_PROMISE_COMMAND):
        row["promise_name"] = getattr(message, "key", None)
    if type_ >= 0x8000:
        row.pop("name")
    return row


def _build_journal(src: Sources, only: Only) -> Rows:
    rows = []
    for txn, partition, invocation_id, _st in _statuses(src, only):
        inv = InvocationId.from_bytes(invocation_id)
        text = str(inv)
        for index, entry in enumerate(journal.read(txn, partition, invocation_id)):
            rows.append({
                "partition_key": inv.partition_key, "id": text, "index": index,
                "entry_type": entry_type_name(entry.type), "raw": entry.payload,
                "raw_length": len(entry.payload), "version": 2, **_entry_details(entry.type, entry.payload),
            })
    return rows


def _empty(_src: Sources, _only: Only) -> Rows:
    return []


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("sys_invocation_status", INVOCATION_STATUS, _build_status),
        Table("sys_invocation_state", INVOCATION_STATE, _build_state_of_invocations),
        Table("sys_service", SERVICE, _build_services),
        Table("sys_deployment", DEPLOYMENT, _build_deployments),
        Table("state", STATE, _build_state),
        Table("sys_journal", JOURNAL, _build_journal),
        Table("sys_journal_events", JOURNAL_EVENTS, _empty),
        Table("sys_keyed_service_status", KEYED_SERVICE_STATUS, _build_locks),
        Table("sys_inbox", INBOX, _build_inbox),
        Table("sys_promise", PROMISE, _build_promises),
    )
}
