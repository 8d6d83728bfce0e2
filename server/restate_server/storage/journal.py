"""Journal table: commands and notifications of each invocation, in the order they happened.

Values are the raw service-protocol message: u16 type, u16 flags, payload. The server never
re-encodes what an SDK sent; replay sends the stored bytes back.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from restate_server.storage import keys
from restate_server.storage.transaction import Transaction

_HEAD = struct.Struct(">HH")


@dataclass(slots=True, kw_only=True)
class JournalEntry:
    """One service-protocol message as stored: type, flags and raw protobuf payload."""

    type: int
    flags: int
    payload: bytes


def append(
    txn: Transaction, partition: int, invocation_id: bytes, index: int, type_: int, flags: int, payload: bytes
) -> None:
    txn.put(keys.journal(partition, invocation_id, index), _HEAD.pack(type_, flags) + payload)


def read(txn: Transaction, partition: int, invocation_id: bytes) -> list[JournalEntry]:
    out = []
    for _key, value in txn.scan_prefix(keys.journal_prefix(partition, invocation_id)):
        type_, flags = _HEAD.unpack_from(value)
        out.append(JournalEntry(type=type_, flags=flags, payload=value[_HEAD.size :]))
    return out


def get(txn: Transaction, partition: int, invocation_id: bytes, index: int) -> JournalEntry | None:
    value = txn.get(keys.journal(partition, invocation_id, index))
    if value is None:
        return None
    type_, flags = _HEAD.unpack_from(value)
    return JournalEntry(type=type_, flags=flags, payload=value[_HEAD.size :])


def delete_all(txn: Transaction, partition: int, invocation_id: bytes, length: int) -> None:
    for index in range(length):
        txn.delete(keys.journal(partition, invocation_id, index))
