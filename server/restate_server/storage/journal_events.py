"""Journal events table: transient errors and pauses of each invocation, in the order they happened.

A row is the msgpack array `[after_journal_entry_index, appended_at, event type, event json]`
(upstream's `sys_journal_events` columns), keyed by invocation and a per-partition sequence number.
Events go with the journal: dropping a journal drops them.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from restate_server.outcomes import JournalEvent
from restate_server.storage import fsm, keys
from restate_server.storage.transaction import Transaction

_SEQ = b"journal_event_seq"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEvent:
    after_journal_entry_index: int
    appended_at: int
    event: JournalEvent


def add(
    txn: Transaction,
    partition: int,
    invocation_id: bytes,
    after_index: int,
    appended_at: int,
    event: JournalEvent,
) -> None:
    seq = fsm.next_counter(txn, partition, _SEQ)
    row = msgpack.packb([after_index, appended_at, event.ty, event.json], use_bin_type=True)
    txn.put(keys.journal_event(partition, invocation_id, seq), row)


def read(txn: Transaction, partition: int, invocation_id: bytes) -> list[StoredEvent]:
    out = []
    for _key, value in txn.scan_prefix(keys.journal_events_prefix(partition, invocation_id)):
        after, appended_at, ty, json = msgpack.unpackb(value, raw=False)
        out.append(
            StoredEvent(
                after_journal_entry_index=after, appended_at=appended_at, event=JournalEvent(ty=ty, json=json)
            )
        )
    return out


def delete_all(txn: Transaction, partition: int, invocation_id: bytes) -> None:
    txn.delete_prefix(keys.journal_events_prefix(partition, invocation_id))
