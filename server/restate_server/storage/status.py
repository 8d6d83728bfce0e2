"""Invocation status table: one row per known invocation (upstream's `invocation_status`).

A row is a msgpack array of the `InvocationStatus` fields in declaration order (append new fields
at the end with a default). The status is a `StrEnum` and results and suspensions are typed in
memory; on disk they keep their original string and list forms, converted in `encode`/`decode`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgpack

from restate_server.outcomes import (
    Result,
    Suspended,
    result_from_wire,
    result_to_wire,
    suspended_from_wire,
    suspended_to_wire,
)
from restate_server.storage import keys
from restate_server.storage.transaction import Transaction


class Status(StrEnum):
    """Where an invocation is in its life; the allowed moves are the state machine's table."""

    FREE = "free"  # no row: not yet created, or purged (never stored)
    INBOXED = "inboxed"
    SCHEDULED = "scheduled"
    INVOKED = "invoked"
    SUSPENDED = "suspended"
    PAUSED = "paused"
    COMPLETED = "completed"


@dataclass(slots=True, kw_only=True)
class InvocationStatus:
    status: Status
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
    # what a suspended invocation waits for (any one of them resumes it)
    waiting: Suspended | None = None
    deployment_id: str | None = None
    protocol_version: int | None = None
    inboxed_at: int | None = None
    scheduled_at: int | None = None
    execute_at: int | None = None
    running_at: int | None = None
    completed_at: int | None = None
    completion_retention: int = 0
    journal_retention: int = 0
    result: Result | None = None
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
        values = list(_ALL_FIELDS(self))
        values[_STATUS] = self.status.value
        if self.waiting is not None:
            values[_WAITING] = suspended_to_wire(self.waiting)
        if self.result is not None:
            values[_RESULT] = result_to_wire(self.result)
        data: bytes = msgpack.packb(values, use_bin_type=True)
        return data

    @classmethod
    def decode(cls, data: bytes) -> InvocationStatus:
        values = msgpack.unpackb(data, raw=False, strict_map_key=False)
        values[_STATUS] = Status(values[_STATUS])
        if len(values) > _WAITING and values[_WAITING] is not None:
            values[_WAITING] = suspended_from_wire(values[_WAITING])
        if len(values) > _RESULT and values[_RESULT] is not None:
            values[_RESULT] = result_from_wire(values[_RESULT])
        return cls(**dict(zip(_FIELDS, values, strict=False)))


_FIELDS = [f for f in InvocationStatus.__dataclass_fields__]
_ALL_FIELDS = operator.attrgetter(*_FIELDS)  # one C call instead of a getattr per field
_STATUS, _WAITING, _RESULT = (_FIELDS.index(name) for name in ("status", "waiting", "result"))


def get(txn: Transaction, partition: int, invocation_id: bytes) -> InvocationStatus | None:
    data = txn.get(keys.status(partition, invocation_id))
    return None if data is None else InvocationStatus.decode(data)


def put(txn: Transaction, partition: int, invocation_id: bytes, status: InvocationStatus) -> None:
    txn.put(keys.status(partition, invocation_id), status.encode())


def delete(txn: Transaction, partition: int, invocation_id: bytes) -> None:
    txn.delete(keys.status(partition, invocation_id))


def peek_status(data: bytes) -> Status:
    """The status field of an encoded row, without decoding the rest (it is the first field)."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    unpacker.read_array_header()
    return Status(unpacker.unpack())


def scan_with_status(
    txn: Transaction, partition: int, wanted: Status
) -> list[tuple[bytes, InvocationStatus]]:
    """Rows in the given status; others are skipped without being decoded (a restart scans them all)."""
    prefix = keys.table(keys.STATUS, partition)
    return [
        (k[len(prefix) :], InvocationStatus.decode(v))
        for k, v in txn.scan_prefix(prefix)
        if peek_status(v) == wanted
    ]


def count_by_status(txn: Transaction, partition: int) -> dict[Status, int]:
    """How many rows are in each status, without decoding them (for metrics)."""
    counts: dict[Status, int] = {}
    for _key, value in txn.scan_prefix(keys.table(keys.STATUS, partition)):
        status = peek_status(value)
        counts[status] = counts.get(status, 0) + 1
    return counts


def scan(txn: Transaction, partition: int) -> list[tuple[bytes, InvocationStatus]]:
    prefix = keys.table(keys.STATUS, partition)
    return [(k[len(prefix) :], InvocationStatus.decode(v)) for k, v in txn.scan_prefix(prefix)]
