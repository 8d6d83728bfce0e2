"""State table: the key/value state of virtual objects and workflows."""

from __future__ import annotations

from restate_server.storage import keys
from restate_server.storage.transaction import Transaction


def get(txn: Transaction, partition: int, service: str, key: str, state_key: bytes) -> bytes | None:
    return txn.get(keys.state(partition, service, key, state_key))


def put(txn: Transaction, partition: int, service: str, key: str, state_key: bytes, value: bytes) -> None:
    txn.put(keys.state(partition, service, key, state_key), value)


def delete(txn: Transaction, partition: int, service: str, key: str, state_key: bytes) -> None:
    txn.delete(keys.state(partition, service, key, state_key))


def get_all(txn: Transaction, partition: int, service: str, key: str) -> list[tuple[bytes, bytes]]:
    prefix = keys.state_prefix(partition, service, key)
    return [(k[len(prefix) :], v) for k, v in txn.scan_prefix(prefix)]


def clear_all(txn: Transaction, partition: int, service: str, key: str) -> None:
    txn.delete_prefix(keys.state_prefix(partition, service, key))
