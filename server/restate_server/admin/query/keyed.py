"""Tables of keyed services: object and workflow state, key locks, inboxes and durable promises.

Their rows live under (service, key) in the partition store; the partition key column is the
hash of the object key, as upstream computes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from restate_server.admin.query import tables
from restate_server.ids import InvocationId, partition_key_for, partition_of
from restate_server.log.records import Failure, Value
from restate_server.storage import inbox, keys, promises, status
from restate_server.storage.transaction import Transaction

STATE = tables.schema_of(
    ("partition_key", tables.U64),
    ("scope", tables.STR),
    ("service_name", tables.STR),
    ("service_key", tables.STR),
    ("key", tables.STR),
    ("key_length", tables.U64),
    ("value_utf8", tables.STR),
    ("value", tables.BIN),
    ("value_length", tables.U64),
)
KEYED_SERVICE_STATUS = tables.schema_of(
    ("partition_key", tables.U64),
    ("service_name", tables.STR),
    ("service_key", tables.STR),
    ("invocation_id", tables.STR),
)
INBOX = tables.schema_of(
    ("partition_key", tables.U64),
    ("service_name", tables.STR),
    ("service_key", tables.STR),
    ("id", tables.STR),
    ("sequence_number", tables.U64),
    ("created_at", tables.TS),
)
PROMISE = tables.schema_of(
    ("partition_key", tables.U64),
    ("scope", tables.STR),
    ("service_name", tables.STR),
    ("service_key", tables.STR),
    ("key", tables.STR),
    ("completed", tables.BOOL),
    ("completion_success_value", tables.BIN),
    ("completion_success_value_utf8", tables.STR),
    ("completion_failure", tables.STR),
)


def _keyed_rows(src: tables.Sources, tag: bytes) -> Iterator[tuple[Transaction, str, str, bytes, bytes]]:
    """(txn, service, key, rest of the row key, value) of every row of a keyed table."""
    for txn, partition in src.partitions():
        prefix = keys.table(tag, partition)
        for row_key, value in txn.scan_prefix(prefix):
            service, key, rest = keys.split_service_key(row_key[len(prefix) :])
            yield txn, service, key, rest, value


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


def build_state(src: tables.Sources, _only: tables.Only) -> tables.Rows:
    """One row per state key of every object and workflow."""
    rows = []
    for _txn, service, key, name, value in _keyed_rows(src, keys.STATE):
        rows.append(
            {
                "partition_key": partition_key_for(key),
                "service_name": service,
                "service_key": key,
                "key": name.decode(errors="replace"),
                "key_length": len(name),
                "value_utf8": _utf8(value),
                "value": value,
                "value_length": len(value),
            }
        )
    return rows


def build_locks(src: tables.Sources, _only: tables.Only) -> tables.Rows:
    """Which invocation holds each locked key (upstream's ``sys_keyed_service_status``)."""
    return [
        {
            "partition_key": partition_key_for(key),
            "service_name": service,
            "service_key": key,
            "invocation_id": str(InvocationId.from_bytes(value)),
        }
        for _txn, service, key, _rest, value in _keyed_rows(src, keys.LOCK)
    ]


def build_inbox(src: tables.Sources, _only: tables.Only) -> tables.Rows:
    """Invocations queued behind a locked key, with their arrival sequence numbers."""
    rows = []
    for txn, service, key, rest, value in _keyed_rows(src, keys.INBOX):
        if inbox.mutation(value) is not None:
            continue  # a state patch waiting for the key: not an invocation
        inv = InvocationId.from_bytes(value)
        st = status.get(txn, partition_of(inv.partition_key, src.num_partitions), value)
        rows.append(
            {
                "partition_key": inv.partition_key,
                "service_name": service,
                "service_key": key,
                "id": str(inv),
                "sequence_number": keys.read_u64(rest),
                "created_at": st.created_at if st is not None else None,
            }
        )
    return rows


def build_promises(src: tables.Sources, _only: tables.Only) -> tables.Rows:
    """Durable promises of workflows, with their completion if any."""
    rows = []
    for _txn, service, key, rest, value in _keyed_rows(src, keys.PROMISE):
        name = rest.decode()
        result = promises.decode(value).result
        row: dict[str, Any] = {
            "partition_key": partition_key_for(key),
            "service_name": service,
            "service_key": key,
            "key": name,
            "completed": result is not None,
        }
        if isinstance(result, Value):
            row["completion_success_value"] = result.content
            row["completion_success_value_utf8"] = _utf8(result.content)
        elif isinstance(result, Failure):
            row["completion_failure"] = f"[{result.code}] {result.message}"
        rows.append(row)
    return rows
