"""Durable promises of workflows, keyed by (workflow, workflow id, promise name).

A row is the msgpack map `{"result": result | None, "waiters": [[invocation id, completion id]]}`
(the SQL `sys_promise` table reads the same form).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgpack

from restate_server.outcomes import Result, result_from_wire, result_to_wire
from restate_server.storage import keys
from restate_server.storage.transaction import Transaction


@dataclass(slots=True, kw_only=True)
class Promise:
    """A promise's result once completed, and the GetPromise commands waiting for it until then."""

    result: Result | None = None
    waiters: list[tuple[bytes, int]] = field(default_factory=list)


def decode(data: bytes) -> Promise:
    """A stored promise row (also read by the SQL `sys_promise` table)."""
    row = msgpack.unpackb(data, raw=False)
    result = row["result"]
    return Promise(
        result=None if result is None else result_from_wire(result),
        waiters=[(w[0], w[1]) for w in row["waiters"]],
    )


def get(txn: Transaction, partition: int, service: str, key: str, name: str) -> Promise | None:
    data = txn.get(keys.promise(partition, service, key, name))
    return None if data is None else decode(data)


def put(txn: Transaction, partition: int, service: str, key: str, name: str, promise: Promise) -> None:
    row = {
        "result": None if promise.result is None else result_to_wire(promise.result),
        "waiters": [list(w) for w in promise.waiters],
    }
    txn.put(keys.promise(partition, service, key, name), msgpack.packb(row, use_bin_type=True))


def clear_all(txn: Transaction, partition: int, service: str, key: str) -> None:
    txn.delete_prefix(keys.promise_prefix(partition, service, key))
