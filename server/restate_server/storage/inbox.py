"""Locks and inboxes of keyed services: one running exclusive invocation per key, the rest queued.

The lock row (upstream's `sys_keyed_service_status`) names the invocation holding the key; the
inbox rows hold, in arrival order, the waiting invocation ids (24 bytes) and the state mutations
that must wait for the key too (`MUTATION` followed by the encoded record: never 24 bytes long).
"""

from __future__ import annotations

from restate_server.storage import fsm, keys
from restate_server.storage.transaction import Transaction


def lock_holder(txn: Transaction, partition: int, service: str, key: str) -> bytes | None:
    return txn.get(keys.lock(partition, service, key))


def lock(txn: Transaction, partition: int, service: str, key: str, invocation_id: bytes) -> None:
    txn.put(keys.lock(partition, service, key), invocation_id)


def unlock(txn: Transaction, partition: int, service: str, key: str) -> None:
    txn.delete(keys.lock(partition, service, key))


MUTATION = b"restate/state-mutation/"  # 23 bytes: a mutation row is longer than an invocation id


def mutation(row: bytes) -> bytes | None:
    """The encoded state mutation an inbox row holds, or None if it holds an invocation id."""
    return row[len(MUTATION) :] if row.startswith(MUTATION) and len(row) != _INVOCATION_ID_LEN else None


_INVOCATION_ID_LEN = 24


def enqueue_mutation(txn: Transaction, partition: int, service: str, key: str, record: bytes) -> int:
    """Queue an encoded state mutation behind what already waits for the key."""
    return enqueue(txn, partition, service, key, MUTATION + record)


def enqueue(txn: Transaction, partition: int, service: str, key: str, invocation_id: bytes) -> int:
    seq = fsm.next_counter(txn, partition, b"inbox_seq")
    txn.put(keys.inbox(partition, service, key, seq), invocation_id)
    return seq


def pop(txn: Transaction, partition: int, service: str, key: str) -> bytes | None:
    """Remove and return the oldest queued row of the key (an invocation id, or see `mutation`).

    The scan starts at the last popped position: an LSM store keeps deleted rows as tombstones
    for a while, and a hot key's inbox would otherwise be re-read past all of them on every pop.
    """
    head_key = keys.inbox_head(partition, service, key)
    head = txn.get(head_key)
    start = keys.inbox(partition, service, key, keys.read_u64(head) if head else 0)
    prefix = keys.inbox_prefix(partition, service, key)
    for row_key, invocation_id in txn.scan_from(start, prefix):
        txn.delete(row_key)
        txn.put(head_key, keys.u64(keys.inbox_seq(row_key) + 1))
        return invocation_id
    return None


def remove(txn: Transaction, partition: int, service: str, key: str, seq: int) -> None:
    txn.delete(keys.inbox(partition, service, key, seq))
