"""In-process watches, shared by the providers that live in this process (memory and RocksDB).

A provider publishes every change after it is durable; each watch gets the current state first (taken
in the same step as the subscription, so nothing falls between them) and then the changes, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field

from restate_server.metadata.api import Change


@dataclass(slots=True)
class _Watch:
    key: str
    prefix: bool
    queue: asyncio.Queue[Change] = field(default_factory=asyncio.Queue)

    def matches(self, key: str) -> bool:
        return key.startswith(self.key) if self.prefix else key == self.key


class Watchers:
    def __init__(self) -> None:
        self._watches: list[_Watch] = []

    def publish(self, change: Change) -> None:
        for watch in self._watches:
            if watch.matches(change.key):
                watch.queue.put_nowait(change)

    async def follow(
        self, key: str, prefix: bool, snapshot: Callable[[], Iterable[Change]]
    ) -> AsyncGenerator[Change, None]:
        """Yield the ``snapshot``, then the published changes that match.

        The snapshot is taken and the watch registered in one step (no await between them).
        """
        watch = _Watch(key, prefix)
        for change in snapshot():
            watch.queue.put_nowait(change)
        self._watches.append(watch)
        try:
            while True:
                yield await watch.queue.get()
        finally:
            self._watches.remove(watch)
