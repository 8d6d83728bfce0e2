"""Durable promises of workflows, keyed by (workflow, workflow id, promise name)."""

from __future__ import annotations

from typing import Any

import msgpack

from restate_server.storage import keys
from restate_server.storage.transaction import Transaction


def get(txn: Transaction, partition: int, service: str, key: str, name: str) -> dict[str, Any] | None:
    """{"result": Result | None, "waiters": [[invocation id, completion id, notification type]]}."""
    data = txn.get(keys.promise(partition, service, key, name))
    return None if data is None else dict(msgpack.unpackb(data, raw=False))


def put(txn: Transaction, partition: int, service: str, key: str, name: str, value: dict[str, Any]) -> None:
    txn.put(keys.promise(partition, service, key, name), msgpack.packb(value, use_bin_type=True))


def clear_all(txn: Transaction, partition: int, service: str, key: str) -> None:
    txn.delete_prefix(keys.promise_prefix(partition, service, key))
