"""Invocation status table: one row per known invocation (upstream's `invocation_status`).

A row has a fixed little-endian header (status, counters, timestamps), the strings behind end
offsets, and a msgpack tail (see "row layout" below): cheap to encode and decode on the hot path,
and laid out so that SQL can cut columns out of many rows at once. Rows written before this layout
(a msgpack list of the fields in declaration order) still decode; they are rewritten in the new
layout the next time the invocation changes.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgpack

from restate_server.outcomes import (
    Failure,
    Result,
    Suspended,
    Value,
    Void,
    result_from_wire,
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
        """The row in the columnar-friendly layout (see ``Layout``)."""
        return _encode(self)

    @classmethod
    def decode(cls, data: bytes, load_result: Callable[[], bytes | None] | None = None) -> InvocationStatus:
        """A row of either layout: the current one, or the msgpack list written before it.

        A large result is stored apart from the row (see `put`): ``load_result`` reads it. Without
        it such a row decodes with ``result`` None, which is only right for readers that do not
        need the result (`get` and the scans here always pass it).
        """
        if data[0] != FORMAT:
            return _decode_list(data)
        return _decode(data, load_result)


# ------------------------------------------------------------------ row layout
#
# A row is: the FORMAT byte, a fixed little-endian header (FIXED), the end offsets of the variable
# fields (u32 each, counted from the start of the variable part), the variable fields' UTF-8 (or
# raw) bytes one after the other, and a msgpack tail with the lists and the result's content.
# Everything SQL shows sits at a fixed offset or behind an offset, so `/query` can cut whole
# columns out of millions of rows at once (``admin.query.status_columns``) instead of decoding
# each row; the tail, which may hold a large result, comes last and is never read by SQL.

FORMAT = 0xF2
"""First byte of a row in this layout; the older msgpack rows start with 0x90-0x9f or 0xdc/0xdd."""

FIXED: tuple[tuple[str, str], ...] = (
    ("status", "B"),  # STATUS_CODES index
    ("result_kind", "B"),  # RESULT_KINDS index
    ("cancel_requested", "B"),
    ("reserved", "B"),
    ("present", "I"),  # bit i set: NULLABLE[i] is not None
    ("journal_length", "I"),
    ("commands", "I"),
    ("journal_commands_after_pin", "I"),
    ("protocol_version", "I"),
    ("failure_code", "I"),
    ("created_at", "q"),
    ("modified_at", "q"),
    ("inboxed_at", "q"),
    ("scheduled_at", "q"),
    ("execute_at", "q"),
    ("running_at", "q"),
    ("completed_at", "q"),
    ("completion_retention", "q"),
    ("journal_retention", "q"),
    ("inbox_seq", "q"),
)
VARIABLE: tuple[str, ...] = (
    "service",
    "handler",
    "key",
    "service_ty",
    "handler_ty",
    "idempotency_key",
    "deployment_id",
    "source_kind",
    "caller_id",  # raw invocation id bytes
    "caller_target",
    "subscription_id",
    "failure_message",
)
NULLABLE: tuple[str, ...] = (
    "protocol_version",
    "inboxed_at",
    "scheduled_at",
    "execute_at",
    "running_at",
    "completed_at",
    "inbox_seq",
    "key",
    "handler_ty",
    "idempotency_key",
    "deployment_id",
    "source_kind",
    "caller_id",
    "caller_target",
    "subscription_id",
)
STATUS_CODES: tuple[Status, ...] = (
    Status.FREE,
    Status.INBOXED,
    Status.SCHEDULED,
    Status.INVOKED,
    Status.SUSPENDED,
    Status.PAUSED,
    Status.COMPLETED,
)
"""Stored status byte -> status; append new statuses, never reorder (the bytes are on disk)."""
RESULT_KINDS: tuple[str | None, ...] = (None, "value", "failure", "void", "value stored apart")
INLINE_RESULT = 1024
"""Results up to this many bytes stay in the status row; larger ones go to their own row, so that
scans of the status table (SQL, the cleaner) never read megabytes of output."""

_FIXED = struct.Struct("<" + "".join(code for _name, code in FIXED))
_ENDS = struct.Struct(f"<{len(VARIABLE)}I")
FIXED_OFFSETS = {
    name: 1 + struct.calcsize("<" + "".join(c for _n, c in FIXED[:i])) for i, (name, _c) in enumerate(FIXED)
}
"""Byte offset of each fixed field in a row."""
ENDS_OFFSET = 1 + _FIXED.size
VARIABLE_OFFSET = ENDS_OFFSET + _ENDS.size
"""Where the variable part starts; the end offsets of its fields are counted from here."""
_BIT = {name: 1 << i for i, name in enumerate(NULLABLE)}
_STATUS_CODE = {s: i for i, s in enumerate(STATUS_CODES)}
_RESULT_KIND = {Value: 1, Failure: 2, Void: 3}
_VALUE, _APART = 1, 4


(
    _P_PROTOCOL,
    _P_INBOXED,
    _P_SCHEDULED,
    _P_EXECUTE,
    _P_RUNNING,
    _P_COMPLETED,
    _P_INBOX_SEQ,
    _P_KEY,
    _P_HANDLER_TY,
    _P_IDEMPOTENCY,
    _P_DEPLOYMENT,
    _P_KIND,
    _P_CALLER,
    _P_TARGET,
    _P_SUBSCRIPTION,
) = (_BIT[name] for name in NULLABLE)
_FORMAT_BYTE = bytes([FORMAT])


def _utf8(value: str | None) -> bytes:
    return b"" if value is None else value.encode()


def _encode(st: InvocationStatus) -> bytes:
    kind, caller_id, caller_target, subscription_id = (*st.source, None, None, None, None)[:4]
    result = st.result
    failure = result if isinstance(result, Failure) else None
    apart = stored_apart(result)
    present = (
        (_P_PROTOCOL if st.protocol_version is not None else 0)
        | (_P_INBOXED if st.inboxed_at is not None else 0)
        | (_P_SCHEDULED if st.scheduled_at is not None else 0)
        | (_P_EXECUTE if st.execute_at is not None else 0)
        | (_P_RUNNING if st.running_at is not None else 0)
        | (_P_COMPLETED if st.completed_at is not None else 0)
        | (_P_INBOX_SEQ if st.inbox_seq is not None else 0)
        | (_P_KEY if st.key is not None else 0)
        | (_P_HANDLER_TY if st.handler_ty is not None else 0)
        | (_P_IDEMPOTENCY if st.idempotency_key is not None else 0)
        | (_P_DEPLOYMENT if st.deployment_id is not None else 0)
        | (_P_KIND if kind is not None else 0)
        | (_P_CALLER if caller_id is not None else 0)
        | (_P_TARGET if caller_target is not None else 0)
        | (_P_SUBSCRIPTION if subscription_id is not None else 0)
    )
    parts = (
        st.service.encode(),
        st.handler.encode(),
        _utf8(st.key),
        st.service_ty.encode(),
        _utf8(st.handler_ty),
        _utf8(st.idempotency_key),
        _utf8(st.deployment_id),
        _utf8(kind),
        bytes(caller_id) if caller_id is not None else b"",
        _utf8(caller_target),
        _utf8(subscription_id),
        failure.message.encode() if failure is not None else b"",
    )
    tail = msgpack.packb(
        (
            st.response_sinks,
            st.completed_ids,
            st.signal_ids,
            st.signal_names,
            suspended_to_wire(st.waiting) if st.waiting is not None else None,
            result.content if isinstance(result, Value) and not apart else None,
        ),
        use_bin_type=True,
    )
    header = _FIXED.pack(
        _STATUS_CODE[st.status],
        _APART if apart else 0 if result is None else _RESULT_KIND[type(result)],
        st.cancel_requested,
        0,
        present,
        st.journal_length,
        st.commands,
        st.journal_commands_after_pin,
        st.protocol_version or 0,
        failure.code if failure is not None else 0,
        st.created_at,
        st.modified_at,
        st.inboxed_at or 0,
        st.scheduled_at or 0,
        st.execute_at or 0,
        st.running_at or 0,
        st.completed_at or 0,
        st.completion_retention,
        st.journal_retention,
        st.inbox_seq or 0,
    )
    ends = _ENDS.pack(*itertools.accumulate(map(len, parts)))
    return b"".join((_FORMAT_BYTE, header, ends, *parts, tail))


def stored_apart(result: Result | None) -> bool:
    """Whether `put` keeps this result in its own row."""
    return isinstance(result, Value) and len(result.content) > INLINE_RESULT


def _decode(data: bytes, load_result: Callable[[], bytes | None] | None) -> InvocationStatus:
    (
        status_code,
        result_kind,
        cancel_requested,
        _reserved,
        present,
        journal_length,
        commands,
        after_pin,
        protocol_version,
        failure_code,
        created_at,
        modified_at,
        inboxed_at,
        scheduled_at,
        execute_at,
        running_at,
        completed_at,
        completion_retention,
        journal_retention,
        inbox_seq,
    ) = _FIXED.unpack_from(data, 1)
    o = VARIABLE_OFFSET
    e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11, e12 = (o + e for e in _ENDS.unpack_from(data, ENDS_OFFSET))
    sinks, completed_ids, signal_ids, signal_names, waiting, content = msgpack.unpackb(
        memoryview(data)[e12:], raw=False, strict_map_key=False
    )
    result: Result | None = None
    if result_kind == _VALUE:
        result = Value(content=content)
    elif result_kind == _APART:
        apart = load_result() if load_result is not None else None
        result = None if apart is None else Value(content=apart)
    elif result_kind == 2:
        result = Failure(code=failure_code, message=data[e11:e12].decode())
    elif result_kind == 3:
        result = Void()
    return InvocationStatus(
        status=STATUS_CODES[status_code],
        service=data[o:e1].decode(),
        handler=data[e1:e2].decode(),
        key=data[e2:e3].decode() if present & _P_KEY else None,
        service_ty=data[e3:e4].decode(),
        handler_ty=data[e4:e5].decode() if present & _P_HANDLER_TY else None,
        created_at=created_at,
        modified_at=modified_at,
        source=[
            data[e7:e8].decode() if present & _P_KIND else None,
            data[e8:e9] if present & _P_CALLER else None,
            data[e9:e10].decode() if present & _P_TARGET else None,
            data[e10:e11].decode() if present & _P_SUBSCRIPTION else None,
        ],
        idempotency_key=data[e5:e6].decode() if present & _P_IDEMPOTENCY else None,
        response_sinks=sinks,
        journal_length=journal_length,
        commands=commands,
        completed_ids=completed_ids,
        signal_ids=signal_ids,
        signal_names=signal_names,
        waiting=suspended_from_wire(waiting) if waiting is not None else None,
        deployment_id=data[e6:e7].decode() if present & _P_DEPLOYMENT else None,
        protocol_version=protocol_version if present & _P_PROTOCOL else None,
        inboxed_at=inboxed_at if present & _P_INBOXED else None,
        scheduled_at=scheduled_at if present & _P_SCHEDULED else None,
        execute_at=execute_at if present & _P_EXECUTE else None,
        running_at=running_at if present & _P_RUNNING else None,
        completed_at=completed_at if present & _P_COMPLETED else None,
        completion_retention=completion_retention,
        journal_retention=journal_retention,
        result=result,
        inbox_seq=inbox_seq if present & _P_INBOX_SEQ else None,
        cancel_requested=bool(cancel_requested),
        journal_commands_after_pin=after_pin,
    )


def _decode_list(data: bytes) -> InvocationStatus:
    """A row written before the current layout: a msgpack list of the fields in declaration order."""
    values = msgpack.unpackb(data, raw=False, strict_map_key=False)
    values[_STATUS] = Status(values[_STATUS])
    if len(values) > _WAITING and values[_WAITING] is not None:
        values[_WAITING] = suspended_from_wire(values[_WAITING])
    if len(values) > _RESULT and values[_RESULT] is not None:
        values[_RESULT] = result_from_wire(values[_RESULT])
    return InvocationStatus(**dict(zip(_FIELDS, values, strict=False)))


_FIELDS = [f for f in InvocationStatus.__dataclass_fields__]
_STATUS, _WAITING, _RESULT = (_FIELDS.index(name) for name in ("status", "waiting", "result"))


def get(txn: Transaction, partition: int, invocation_id: bytes) -> InvocationStatus | None:
    data = txn.get(keys.status(partition, invocation_id))
    return None if data is None else InvocationStatus.decode(data, _loader(txn, partition, invocation_id))


def _loader(txn: Transaction, partition: int, invocation_id: bytes) -> Callable[[], bytes | None]:
    return lambda: txn.get(keys.result(partition, invocation_id))


def put(txn: Transaction, partition: int, invocation_id: bytes, status: InvocationStatus) -> None:
    txn.put(keys.status(partition, invocation_id), status.encode())
    if stored_apart(status.result):
        assert isinstance(status.result, Value)
        txn.put(keys.result(partition, invocation_id), status.result.content)
    _index(txn, partition, invocation_id, status.status)


def delete(txn: Transaction, partition: int, invocation_id: bytes) -> None:
    txn.delete(keys.status(partition, invocation_id))
    for index in _INDEXES:
        txn.delete(index.key(partition, invocation_id))
    txn.delete(keys.result(partition, invocation_id))


@dataclass(frozen=True, slots=True)
class _Index:
    """An index of the status rows whose status is ``member``, kept by every status write."""

    marker: bytes
    """fsm key: the partition's index is complete (built from the rows of an older store)."""
    key: Callable[[int, bytes], bytes]
    member: Callable[[Status], bool]


_INDEXES = (
    # a new leader resumes these without reading every retained status row (there may be millions)
    _Index(b"invoked_index", keys.invoked, lambda s: s == Status.INVOKED),
    # what `status != 'completed'` queries read (`restate invocations list`), however many are retained
    _Index(b"unfinished_index", keys.unfinished, lambda s: s != Status.COMPLETED),
)


def _index(txn: Transaction, partition: int, invocation_id: bytes, status: Status) -> None:
    for index in _INDEXES:
        if index.member(status):
            txn.put(index.key(partition, invocation_id), b"")
        else:
            txn.delete(index.key(partition, invocation_id))


def scan_invoked(txn: Transaction, partition: int) -> list[bytes]:
    """Ids of the invocations in status invoked (from the index, see `build_indexes`)."""
    prefix = keys.table(keys.INVOKED, partition)
    return [k[len(prefix) :] for k, _ in txn.scan_prefix(prefix)]


def build_indexes(txn: Transaction, partition: int) -> bool:
    """Build the indexes a store written before them lacks, from its status rows, once; True if any."""
    missing = [index for index in _INDEXES if txn.get(keys.fsm(partition, index.marker)) is None]
    if not missing:
        return False
    prefix = keys.table(keys.STATUS, partition)
    for key, value in txn.scan_prefix(prefix):
        row_status = peek_status(value)
        for index in missing:
            if index.member(row_status):
                txn.put(index.key(partition, key[len(prefix) :]), b"")
    for index in missing:
        txn.put(keys.fsm(partition, index.marker), keys.u64(1))
    return True


def peek_status(data: bytes) -> Status:
    """The status field of an encoded row, without decoding the rest."""
    if data[0] == FORMAT:
        return STATUS_CODES[data[1]]
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
        (k[len(prefix) :], InvocationStatus.decode(v, _loader(txn, partition, k[len(prefix) :])))
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
    return [
        (k[len(prefix) :], InvocationStatus.decode(v, _loader(txn, partition, k[len(prefix) :])))
        for k, v in txn.scan_prefix(prefix)
    ]
