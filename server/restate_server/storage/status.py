"""Invocation status table: one row per known invocation (upstream's `invocation_status`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

from restate_server.storage import keys
from restate_server.storage.transaction import Transaction

INBOXED = "inboxed"
SCHEDULED = "scheduled"
INVOKED = "invoked"
SUSPENDED = "suspended"
PAUSED = "paused"
COMPLETED = "completed"


@dataclass(slots=True, kw_only=True)
class InvocationStatus:
    status: str
    service: str
    handler: str
    key: str | None
    service_ty: str
    handler_ty: str | None
    created_at: int
    modified_at: int
    source: list[Any]
    idempotency_key: str | None = None
    response_sinks: list[list[Any]] = field(default_factory=list)
    journal_length: int = 0
    commands: int = 0
    # completion ids and signal ids/names that already have a notification in the journal
    completed_ids: list[int] = field(default_factory=list)
    signal_ids: list[int] = field(default_factory=list)
    signal_names: list[str] = field(default_factory=list)
    # suspension: [completion ids, signal ids, signal names, future bytes | None]
    waiting: list[Any] | None = None
    deployment_id: str | None = None
    protocol_version: int | None = None
    inboxed_at: int | None = None
    scheduled_at: int | None = None
    execute_at: int | None = None
    running_at: int | None = None
    completed_at: int | None = None
    completion_retention: int = 0
    journal_retention: int = 0
    result: list[Any] | None = None
    inbox_seq: int | None = None
    cancel_requested: bool = False
    journal_commands_after_pin: int = 0

    @property
    def keyed(self) -> bool:
        return self.key is not None and self.service_ty != "Service"

    @property
    def exclusive(self) -> bool:
        """Holds the key's lock while running (exclusive object handlers and workflow run)."""
        return self.keyed and self.handler_ty in ("Exclusive", "Workflow", None)

    @property
    def target(self) -> str:
        if self.key is not None and self.service_ty != "Service":
            return f"{self.service}/{self.key}/{self.handler}"
        return f"{self.service}/{self.handler}"

    @property
    def expires_at(self) -> int | None:
        """When a completed invocation may be purged (None: keep)."""
        if self.completed_at is None:
            return None
        return self.completed_at + max(self.completion_retention, self.journal_retention)

    def encode(self) -> bytes:
        data: bytes = msgpack.packb([getattr(self, name) for name in _FIELDS], use_bin_type=True)
        return data

    @classmethod
    def decode(cls, data: bytes) -> InvocationStatus:
        values = msgpack.unpackb(data, raw=False, strict_map_key=False)
        return cls(**dict(zip(_FIELDS, values, strict=False)))


_FIELDS = [f for f in InvocationStatus.__dataclass_fields__]


def get(txn: Transaction, partition: int, invocation_id: bytes) -> InvocationStatus | None:
    data = txn.get(keys.status(partition, invocation_id))
    return None if data is None else InvocationStatus.decode(data)


def put(txn: Transaction, partition: int, invocation_id: bytes, status: InvocationStatus) -> None:
    txn.put(keys.status(partition, invocation_id), status.encode())


def delete(txn: Transaction, partition: int, invocation_id: bytes) -> None:
    txn.delete(keys.status(partition, invocation_id))


def peek_status(data: bytes) -> str:
    """The status field of an encoded row, without decoding the rest (it is the first field)."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    unpacker.read_array_header()
    value: str = unpacker.unpack()
    return value


def scan_with_status(txn: Transaction, partition: int, wanted: str) -> list[tuple[bytes, InvocationStatus]]:
    """Rows in the given status; others are skipped without being decoded (a restart scans them all)."""
    prefix = keys.table(keys.STATUS, partition)
    return [
        (k[len(prefix) :], InvocationStatus.decode(v))
        for k, v in txn.scan_prefix(prefix)
        if peek_status(v) == wanted
    ]


def scan(txn: Transaction, partition: int) -> list[tuple[bytes, InvocationStatus]]:
    prefix = keys.table(keys.STATUS, partition)
    return [(k[len(prefix) :], InvocationStatus.decode(v)) for k, v in txn.scan_prefix(prefix)]
