"""Where the Replay API reads an object's state history: the seam a cluster routes through.

The servicer asks for an object's history window and for pages of events between two positions;
a single node answers from its own partition store (`LocalHistory`), and a cluster node that does
not hold the partition can answer the same questions by asking a replica that does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from restate_server.rocksdb import Database
from restate_server.storage import state_history
from restate_server.storage.state_history import Event, Position


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectRef:
    """One virtual object or workflow key, and the partition holding it."""

    partition: int
    service: str
    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """What an object's history holds right now."""

    trimmed_through: int | None
    """The newest commit ts retention removed (events at or before it are gone); None if none was."""
    newest: Position | None
    """The last event's position; None for an empty history."""


class HistorySource(Protocol):
    """Reads one object's state history, in commit order."""

    async def window(self, ref: ObjectRef) -> Window: ...

    async def page(self, ref: ObjectRef, *, first: Position, last: Position, limit: int) -> list[Event]:
        """Up to `limit` events from `first` to `last`, both inclusive."""
        ...


class LocalHistory:
    """Reads this node's partition store.

    A page is a short RocksDB scan (no iterator outlives it), done on the event loop: at the page
    sizes the servicer asks for it takes well under a millisecond.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def window(self, ref: ObjectRef) -> Window:
        return Window(
            trimmed_through=state_history.trimmed_through(self._db, ref.partition, ref.service, ref.key),
            newest=state_history.newest(self._db, ref.partition, ref.service, ref.key),
        )

    async def page(self, ref: ObjectRef, *, first: Position, last: Position, limit: int) -> list[Event]:
        return state_history.page(
            self._db, ref.partition, ref.service, ref.key, first=first, last=last, limit=limit
        )
