"""Outbox: records for other partitions, written in the same transaction that decided to send them.

The leader's shuffle delivers each message to its target partition's log, tagged with
(source partition, sequence) so the target applies it exactly once, then proposes a
`TruncateOutbox` record; applying it removes the delivered rows here, on every replica alike.
"""

from __future__ import annotations

import struct

from restate_server.storage import fsm, keys
from restate_server.storage.transaction import Transaction

_TARGET = struct.Struct(">H")
_SEQ = b"outbox_seq"
_HEAD = b"outbox_head"  # first sequence not yet truncated: scans start here, past the tombstones


def add(txn: Transaction, partition: int, target_partition: int, record: bytes) -> int:
    seq = fsm.next_counter(txn, partition, _SEQ)
    txn.put(keys.outbox(partition, seq), _TARGET.pack(target_partition) + record)
    return seq


def pending(txn: Transaction, partition: int) -> list[tuple[int, int, bytes]]:
    """(seq, target partition, encoded record) of undelivered messages, oldest first."""
    start = keys.outbox(partition, fsm.get_int(txn, partition, _HEAD))
    out = []
    for key, value in txn.scan_from(start, keys.table(keys.OUTBOX, partition)):
        out.append((keys.outbox_seq(key), _TARGET.unpack_from(value)[0], value[_TARGET.size :]))
    return out


def truncate(txn: Transaction, partition: int, up_to_seq: int) -> int:
    """Remove the messages with sequence <= `up_to_seq`; returns how many there were.

    The head never passes the next sequence to be written, so a truncation beyond it cannot hide
    messages added later.
    """
    head = fsm.get_int(txn, partition, _HEAD)
    if up_to_seq < head:
        return 0
    delivered = []
    for key, _ in txn.scan_from(keys.outbox(partition, head), keys.table(keys.OUTBOX, partition)):
        if keys.outbox_seq(key) > up_to_seq:
            break
        delivered.append(key)
    for key in delivered:
        txn.delete(key)
    fsm.set_int(txn, partition, _HEAD, min(up_to_seq + 1, fsm.get_int(txn, partition, _SEQ)))
    return len(delivered)
