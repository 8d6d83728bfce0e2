"""In-memory log provider, for tests of the state machine and the contract suite."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

from restate_server.log.api import AppendListener, LogClosedError
from restate_server.log.records import Record


class MemoryLog:
    def __init__(self) -> None:
        self._logs: dict[int, list[tuple[int, Record]]] = {}
        self._next: dict[int, int] = {}
        self._listener: AppendListener | None = None
        self._closed = False

    async def append(self, partition: int, records: Sequence[Record]) -> int:
        return await self.submit(partition, records)

    def submit(self, partition: int, records: Sequence[Record]) -> asyncio.Future[int]:
        """Append now; the returned future is already resolved."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self._closed:
            future.set_exception(LogClosedError("log is closed"))
            return future
        first = self._next.get(partition, 1)
        log = self._logs.setdefault(partition, [])
        for offset, record in enumerate(records):
            log.append((first + offset, record))
        self._next[partition] = first + len(records)
        if self._listener is not None:
            self._listener(partition, first, records)
        future.set_result(first + len(records) - 1)
        return future

    def read(self, partition: int, from_lsn: int) -> Iterator[tuple[int, Record]]:
        return iter([(lsn, r) for lsn, r in self._logs.get(partition, []) if lsn >= from_lsn])

    def tail(self, partition: int) -> int:
        return self._next.get(partition, 1)

    def trim(self, partition: int, up_to_lsn: int) -> None:
        self._logs[partition] = [(lsn, r) for lsn, r in self._logs.get(partition, []) if lsn > up_to_lsn]

    def set_listener(self, listener: AppendListener) -> None:
        self._listener = listener

    async def close(self) -> None:
        self._closed = True
