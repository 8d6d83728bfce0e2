"""The state history written by the state machine: each record's state changes become its events.

While a record is applied, its changes to object state are collected here by object key; when the
record ends they are written as one history event per object (`storage.state_history`), in the same
transaction as the state itself, and when the record is abandoned they are dropped with its other
writes. The event's time is the state machine's clock and its position the record's LSN, so every
replica and every replay writes the same rows.

Whether a service records history, and how long it is kept, comes from the partition store, set by
`TrimStateHistory` records that the leader proposes (never from the schema registry at apply time,
which another replica or a replay might see in another version). A service the partition has no
retention for records history: it is on by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from restate_server.storage import state_history
from restate_server.storage.state_history import Origin
from restate_server.storage.transaction import Transaction

TRIM_BUDGET = 1000
"""Events one `TrimStateHistory` record deletes at most: keeps each apply step short; the leader
proposes another record while expired events remain."""

Change = tuple[bytes, bytes | None]  # (state key, new value or None when cleared)


@dataclass(slots=True)
class PendingHistory:
    """The current record's state changes by object; lives as long as one batch."""

    _objects: dict[tuple[str, str], tuple[Origin, list[Change]]] = field(default_factory=dict)
    _records: dict[str, bool] = field(default_factory=dict)  # service -> history on (batch cache)

    def add(self, service: str, key: str, change: Change, origin: Origin) -> None:
        """Note one change; the first change of a record to an object names the event."""
        entry = self._objects.get((service, key))
        if entry is None:
            self._objects[(service, key)] = (origin, [change])
        else:
            entry[1].append(change)

    def discard(self) -> None:
        """The record was abandoned: none of its changes happened."""
        self._objects.clear()

    def write(self, txn: Transaction, partition: int, *, commit_ts: int, lsn: int) -> None:
        """The record ended: one event per object whose service records history."""
        for (service, key), (origin, changes) in self._objects.items():
            if self._history_on(txn, partition, service):
                state_history.append(
                    txn,
                    partition,
                    service,
                    key,
                    commit_ts=commit_ts,
                    lsn=lsn,
                    origin=origin,
                    changes=changes,
                )
        self._objects.clear()

    def _history_on(self, txn: Transaction, partition: int, service: str) -> bool:
        on = self._records.get(service)
        if on is None:
            on = self._records[service] = state_history.retention(txn, partition, service) != 0
        return on

    def trim(self, txn: Transaction, partition: int, *, now: int, retention: dict[str, int]) -> int:
        """Apply a `TrimStateHistory`: keep its retentions, delete expired events; how many went."""
        state_history.set_retentions(txn, partition, retention)
        self._records.clear()
        budget = TRIM_BUDGET
        for service in sorted(retention):
            budget -= state_history.trim(
                txn, partition, service, up_to_ts=now - retention[service], budget=budget
            )
            if budget <= 0:
                break
        return TRIM_BUDGET - budget
