"""State history table: every committed change of a keyed service's state, per object key, in commit order.

The state machine appends one event per applied record that changed an object's state, in the same
transaction as the change itself, so the history and the state never disagree, on any replica or
replay. An event row (`keys.history`) holds the msgpack list `[invocation id or nil, where, [[state
key, value or nil, version], ...]]`: what made the change (an invocation and its journal index, or
nil and a label such as `admin/<lsn>`; the `inv_…` text is only made when the event is read, to keep
it off the write path), then the operations: nil is a cleared key, and `version` counts the changes
of that state key (its counter lives in `keys.state_version`, so it survives the trimming of old
events).

Retention trims the oldest events first, by an age index (`keys.history_age`) per service, and
remembers per object the newest commit ts it removed (`keys.history_trimmed`): a reader asking for
anything at or before it gets told the history was trimmed instead of silently getting less.

Reads for the Replay API and SQL take the `Database` (committed rows only) and come in small
pages, so a stream holds no RocksDB iterator between pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import msgpack

from restate_server.ids import InvocationId
from restate_server.rocksdb import Database, prefix_end
from restate_server.storage import keys
from restate_server.storage.transaction import Transaction

Position = tuple[int, int]
"""(commit ts, lsn): where an event sits in the history of its object."""

Origin = tuple[bytes | None, str]
"""What made a change: (invocation id, journal index or "purge"), or (None, a label like "admin/<lsn>")."""

_LAST = (1 << 64) - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One state key set (`value`) or cleared (`value` None) by an event."""

    key: bytes
    value: bytes | None
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One applied record's changes to one object's state."""

    commit_ts: int
    lsn: int
    txn_id: str
    """`inv_…/<journal index>`, `inv_…/purge` or a label such as `admin/<lsn>`."""
    operations: tuple[Operation, ...]

    @property
    def position(self) -> Position:
        return self.commit_ts, self.lsn


def decode(row_key: bytes, value: bytes) -> Event:
    """An event from its `keys.history` row."""
    invocation_id, where, operations = msgpack.unpackb(value, raw=False)
    commit_ts, lsn = keys.history_position(row_key)
    return Event(
        commit_ts=commit_ts,
        lsn=lsn,
        txn_id=where if invocation_id is None else f"{InvocationId.from_bytes(invocation_id)}/{where}",
        operations=tuple(Operation(key=k, value=v, version=n) for k, v, n in operations),
    )


# ------------------------------------------------------------------ writes (state machine)


def append(
    txn: Transaction,
    partition: int,
    service: str,
    key: str,
    *,
    commit_ts: int,
    lsn: int,
    origin: Origin,
    changes: Iterable[tuple[bytes, bytes | None]],
) -> None:
    """Record one event: the changes in the order they were made, each with its key's next version."""
    versions: dict[bytes, int] = {}
    operations = []
    for state_key, value in changes:
        version = versions.get(state_key)
        if version is None:
            stored = txn.get(keys.state_version(partition, service, key, state_key))
            version = 0 if stored is None else keys.read_u64(stored)
        version += 1
        versions[state_key] = version
        operations.append([state_key, value, version])
    for state_key, version in versions.items():
        txn.put(keys.state_version(partition, service, key, state_key), keys.u64(version))
    row = msgpack.packb([*origin, operations], use_bin_type=True)
    txn.put(keys.history(partition, service, key, commit_ts, lsn), row)
    txn.put(keys.history_age(partition, service, commit_ts, lsn, key), b"")


def retention(txn: Transaction, partition: int, service: str) -> int | None:
    """The retention (ms) last set for `service` by the log; None when never set (history is on)."""
    stored = txn.get(keys.history_retention(partition, service))
    return None if stored is None else keys.read_u64(stored)


def set_retentions(txn: Transaction, partition: int, retentions: Mapping[str, int]) -> None:
    """Replace the per-service retentions this partition applies."""
    prefix = keys.table(keys.HISTORY_RETENTION, partition)
    for row_key, value in list(txn.scan_prefix(prefix)):
        service = row_key[len(prefix) :].decode()
        wanted = retentions.get(service)
        if wanted is None:
            txn.delete(row_key)
        elif keys.read_u64(value) != wanted:
            txn.put(row_key, keys.u64(wanted))
    for service, wanted in retentions.items():
        if txn.get(keys.history_retention(partition, service)) is None:
            txn.put(keys.history_retention(partition, service), keys.u64(wanted))


def trim(txn: Transaction, partition: int, service: str, *, up_to_ts: int, budget: int) -> int:
    """Delete up to `budget` of the service's oldest events with commit ts <= `up_to_ts`; how many went."""
    if up_to_ts < 0:
        return 0
    prefix = keys.history_age_prefix(partition, service)
    end = prefix + keys.u64(up_to_ts + 1) if up_to_ts < _LAST else prefix_end(prefix)
    deleted = 0
    for row_key, _ in txn.scan_between(prefix, end):
        if deleted >= budget:
            break
        commit_ts, lsn, key = keys.split_history_age(row_key, len(prefix))
        txn.delete(row_key)
        txn.delete(keys.history(partition, service, key, commit_ts, lsn))
        txn.put(keys.history_trimmed(partition, service, key), keys.u64(commit_ts))
        deleted += 1
    return deleted


# ------------------------------------------------------------------ reads (Replay API, SQL, leader)


def oldest_ts(db: Database, partition: int, service: str) -> int | None:
    """The commit ts of the service's oldest event in this partition (what retention would trim next)."""
    prefix = keys.history_age_prefix(partition, service)
    for row_key, _ in db.scan(prefix, prefix_end(prefix)):
        return keys.split_history_age(row_key, len(prefix))[0]
    return None


def trimmed_through(db: Database, partition: int, service: str, key: str) -> int | None:
    """The newest commit ts retention removed from this object's history, if any."""
    stored = db.get(keys.history_trimmed(partition, service, key))
    return None if stored is None else keys.read_u64(stored)


def newest(db: Database, partition: int, service: str, key: str) -> Position | None:
    """Where the object's history ends now."""
    prefix = keys.history_prefix(partition, service, key)
    row_key = db.last_key_before(prefix_end(prefix), prefix)
    return None if row_key is None else keys.history_position(row_key)


def page(
    db: Database, partition: int, service: str, key: str, *, first: Position, last: Position, limit: int
) -> list[Event]:
    """Up to `limit` events of one object from `first` to `last` (both inclusive), in commit order."""
    if first > last:
        return []
    start = keys.history(partition, service, key, *first)
    end_ts, end_lsn = last
    if end_lsn < _LAST:
        end = keys.history(partition, service, key, end_ts, end_lsn + 1)
    elif end_ts < _LAST:
        end = keys.history(partition, service, key, end_ts + 1, 0)
    else:
        end = prefix_end(keys.history_prefix(partition, service, key))
    events = []
    for row_key, value in db.scan(start, end):
        events.append(decode(row_key, value))
        if len(events) >= limit:
            break
    return events


def scan_all(db: Database, partition: int) -> Iterable[tuple[str, str, Event]]:
    """(service, key, event) of every event of a partition (the SQL table)."""
    prefix = keys.table(keys.HISTORY, partition)
    for row_key, value in db.scan(prefix, prefix_end(prefix)):
        service, key, _ = keys.split_service_key(row_key[len(prefix) :])
        yield service, key, decode(row_key, value)
