"""Partition bookkeeping: applied LSN, leader epoch, counters and the dedup position of each producer."""

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


def seen_duplicate(txn: Transaction, partition: int, producer: int | str, seq: int) -> bool:
    """True if `producer` already had a record with this sequence or a later one applied here.

    Records it if not. A producer is a source partition (outbox deliveries) or the name of an
    external producer (a Kafka partition of a subscription); the two never share a key.
    """
    if isinstance(producer, int):
        name = b"dedup/" + keys.u64(producer)
    else:
        name = b"dedup-producer/" + producer.encode()
    last = get_int(txn, partition, name, -1)
    if seq <= last:
        return True
    set_int(txn, partition, name, seq)
    return False
