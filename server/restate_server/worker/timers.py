"""The leader's timer service: fires durable timers by appending `TimerFired` to their partition.

All pending timers of led partitions are kept in one heap (they are loaded from the store when
leadership starts and added as the state machine registers them). A fired timer that the state
machine already deleted (a cancelled sleep) is a no-op when applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable

from restate_server.log.records import TimerFired

Propose = Callable[[int, TimerFired], object]


class TimerService:
    def __init__(self, propose: Propose) -> None:
        self._heap: list[tuple[int, int, bytes]] = []
        self._known: set[bytes] = set()
        self._propose = propose
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, partition: int, key: bytes, fire_at: int) -> None:
        if key in self._known:
            return
        self._known.add(key)
        heapq.heappush(self._heap, (fire_at, partition, key))
        self._changed.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="timer-service")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            now = int(time.time() * 1000)
            while self._heap and self._heap[0][0] <= now:
                _fire_at, partition, key = heapq.heappop(self._heap)
                self._known.discard(key)
                self._propose(partition, TimerFired(timer_key=key, now=now))
            self._changed.clear()
            timeout = (self._heap[0][0] - now) / 1000 if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
