"""Journal table: commands and notifications of each invocation, in the order they happened.

Values are the raw service-protocol message: u16 type, u16 flags, payload. The server never
re-encodes what an SDK sent; replay sends the stored bytes back. A payload above
``INLINE_PAYLOAD`` bytes is kept in a row of its own (``keys.journal_payload``) and the journal row
holds ``APART``, the type, the flags and the length instead: reading the journal's shape (SQL's
index, type and length columns) then never reads megabytes of input or output.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from restate_server.storage import keys
from restate_server.storage.transaction import Transaction

_HEAD = struct.Struct(">HH")
_APART_HEAD = struct.Struct(">HHHI")  # APART, type, flags, payload length
APART = 0xFFFF
"""First u16 of a journal row whose payload is kept apart (no message type has this value)."""
INLINE_PAYLOAD = 16 * 1024


@dataclass(slots=True, kw_only=True)
class JournalEntry:
    """One service-protocol message as stored: type, flags and raw protobuf payload."""

    type: int
    flags: int
    payload: bytes


def append(
    txn: Transaction, partition: int, invocation_id: bytes, index: int, type_: int, flags: int, payload: bytes
) -> None:
    key = keys.journal(partition, invocation_id, index)
    if len(payload) > INLINE_PAYLOAD:
        txn.put(key, _APART_HEAD.pack(APART, type_, flags, len(payload)))
        txn.put(keys.journal_payload(partition, invocation_id, index), payload)
    else:
        txn.put(key, _HEAD.pack(type_, flags) + payload)


def head(value: bytes) -> tuple[int, int, int]:
    """(type, flags, payload length) of a stored journal row, without reading a payload kept apart."""
    type_, flags = _HEAD.unpack_from(value)
    if type_ == APART:
        _apart, type_, flags, length = _APART_HEAD.unpack_from(value)
        return type_, flags, length
    return type_, flags, len(value) - _HEAD.size


def _entry(txn: Transaction, key: bytes, value: bytes) -> JournalEntry:
    type_, flags = _HEAD.unpack_from(value)
    if type_ != APART:
        return JournalEntry(type=type_, flags=flags, payload=value[_HEAD.size :])
    _apart, type_, flags, _length = _APART_HEAD.unpack_from(value)
    payload = txn.get(apart_key(key))
    if payload is None:
        raise KeyError(f"journal payload row missing for {key.hex()}")
    return JournalEntry(type=type_, flags=flags, payload=payload)


def apart_key(journal_key: bytes) -> bytes:
    """The key of the payload row of the journal row ``journal_key``."""
    return keys.JOURNAL_PAYLOAD + journal_key[len(keys.JOURNAL) :]


def read(txn: Transaction, partition: int, invocation_id: bytes) -> list[JournalEntry]:
    return [_entry(txn, k, v) for k, v in txn.scan_prefix(keys.journal_prefix(partition, invocation_id))]


def get(txn: Transaction, partition: int, invocation_id: bytes, index: int) -> JournalEntry | None:
    key = keys.journal(partition, invocation_id, index)
    value = txn.get(key)
    return None if value is None else _entry(txn, key, value)


def delete_all(txn: Transaction, partition: int, invocation_id: bytes, length: int) -> None:
    for key, value in list(txn.scan_prefix(keys.journal_prefix(partition, invocation_id))):
        if _HEAD.unpack_from(value)[0] == APART:
            txn.delete(apart_key(key))
    for index in range(length):
        txn.delete(keys.journal(partition, invocation_id, index))
