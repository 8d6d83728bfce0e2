"""The log API: per-partition, append-only, durable on return.

This is the seam that later carries clusters (a replicated provider behind the same calls), so it
is shaped like upstream's Bifrost: appends are batched (group commit), each append is durable when
it returns, readers get records in LSN order, and a listener sees every durable append in order so
the partition processor can apply it without reading it back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from restate_server.log.records import Record

# (partition, first lsn, records) for each durable append, in append order per partition.
AppendListener = Callable[[int, int, Sequence[Record]], None]


class LogProvider(Protocol):
    async def append(self, partition: int, records: Sequence[Record]) -> int:
        """Append records; returns the LSN of the last one once they are durable."""
        ...

    def submit(self, partition: int, records: Sequence[Record]) -> asyncio.Future[int]:
        """Append without awaiting: LSNs are assigned at call time, so call order is log order."""
        ...

    def read(self, partition: int, from_lsn: int) -> Iterator[tuple[int, Record]]:
        """Durable records with LSN >= from_lsn, in order."""
        ...

    def tail(self, partition: int) -> int:
        """The LSN the next append will get."""
        ...

    def trim(self, partition: int, up_to_lsn: int) -> None:
        """Drop records with LSN <= up_to_lsn (they are reflected in a durable store)."""
        ...

    def set_listener(self, listener: AppendListener) -> None: ...

    async def close(self) -> None: ...


class LogClosedError(Exception):
    """Appending to a log that is shutting down."""
