"""Durable timers: sleeps and delayed invocations, ordered by fire time."""

from __future__ import annotations

from restate_server.storage import keys
from restate_server.storage.transaction import Transaction

SLEEP = 1
DELAYED_INVOKE = 2


def ident(invocation_id: bytes, completion_id: int = 0) -> bytes:
    return invocation_id + keys.u32(completion_id)


def add(txn: Transaction, partition: int, fire_at: int, kind: int, ident_: bytes) -> bytes:
    key = keys.timer(partition, fire_at, kind, ident_)
    txn.put(key, b"")
    return key


def delete(txn: Transaction, partition: int, key: bytes) -> None:
    txn.delete(key)


def exists(txn: Transaction, key: bytes) -> bool:
    return txn.get(key) is not None


def all_timers(txn: Transaction, partition: int) -> list[bytes]:
    return [k for k, _ in txn.scan_prefix(keys.table(keys.TIMER, partition))]


def parse(key: bytes) -> tuple[int, int, bytes, int]:
    """(fire_at, kind, invocation id, completion id) of a timer key."""
    fire_at, kind, rest = keys.timer_fire_at(key)
    return fire_at, kind, rest[:24], int.from_bytes(rest[24:28], "big")
