"""Partition bookkeeping: applied LSN, leader epoch, counters and outbox dedup positions."""

from __future__ import annotations

from restate_server.storage import keys
from restate_server.storage.transaction import Transaction

APPLIED_LSN = b"applied_lsn"
LEADER_EPOCH = b"leader_epoch"
LAST_NOW = b"last_now"  # the newest record timestamp applied: the state machine's clock


def get_int(txn: Transaction, partition: int, name: bytes, default: int = 0) -> int:
    value = txn.get(keys.fsm(partition, name))
    return default if value is None else keys.read_u64(value)


def set_int(txn: Transaction, partition: int, name: bytes, value: int) -> None:
    txn.put(keys.fsm(partition, name), keys.u64(value))


def next_counter(txn: Transaction, partition: int, name: bytes) -> int:
    value = get_int(txn, partition, name)
    set_int(txn, partition, name, value + 1)
    return value


def seen_duplicate(txn: Transaction, partition: int, source_partition: int, seq: int) -> bool:
    """True if this outbox message from `source_partition` was already applied; records it if not."""
    name = b"dedup/" + keys.u64(source_partition)
    last = get_int(txn, partition, name, -1)
    if seq <= last:
        return True
    set_int(txn, partition, name, seq)
    return False
