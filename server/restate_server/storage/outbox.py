"""Outbox: records for other partitions, written in the same transaction that decided to send them.

The leader's shuffle delivers each message to its target partition's log, tagged with
(source partition, sequence) so the target applies it exactly once, then removes it here.
"""

from __future__ import annotations

import struct

from restate_server.storage import fsm, keys
from restate_server.storage.transaction import Transaction

_TARGET = struct.Struct(">H")


def add(txn: Transaction, partition: int, target_partition: int, record: bytes) -> int:
    seq = fsm.next_counter(txn, partition, b"outbox_seq")
    txn.put(keys.outbox(partition, seq), _TARGET.pack(target_partition) + record)
    return seq


def pending(txn: Transaction, partition: int) -> list[tuple[int, int, bytes]]:
    """(seq, target partition, encoded record) of undelivered messages, oldest first."""
    out = []
    for key, value in txn.scan_prefix(keys.table(keys.OUTBOX, partition)):
        out.append((keys.outbox_seq(key), _TARGET.unpack_from(value)[0], value[_TARGET.size :]))
    return out


def delete(txn: Transaction, partition: int, seq: int) -> None:
    txn.delete(keys.outbox(partition, seq))
