"""The leader's timer service: fires durable timers by proposing `TimerFired` to their partition.

All pending timers of led partitions are kept in one heap (loaded from the store when a partition's
leadership starts, added as the state machine registers them, dropped when it steps down). A fired
timer that the state machine already deleted (a cancelled sleep) is a no-op when applied.

A proposal that fails puts its timer back in the heap, to fire again after a backoff: a timer is
only forgotten once its `TimerFired` is in the log, or when its partition is no longer led here.
The heap lives in this object, not in the task that waits on it, so a restarted task (see
`restate_server.tasks`) carries on with every timer. Time comes from an injected clock.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
from collections.abc import Callable

from restate_server.invoker.clock import Clock, LoopClock, Timer
from restate_server.log.api import Fenced, LogClosedError
from restate_server.log.records import TimerFired
from restate_server.worker.errors import WorkerUnavailable

log = logging.getLogger(__name__)

Propose = Callable[[int, TimerFired], asyncio.Future[int]]
RETRY_INITIAL_MS = 100  # a timer whose proposal failed fires again this much later, doubling ...
RETRY_MAX_MS = 5_000  # ... up to this


class TimerService:
    def __init__(self, propose: Propose, *, clock: Clock | None = None) -> None:
        self._heap: list[tuple[int, int, bytes]] = []
        self._known: dict[bytes, int] = {}  # key -> partition, for the timers in the heap
        self._failures: dict[bytes, int] = {}  # key -> consecutive failed proposals
        self._propose = propose
        self._clock: Clock = clock or LoopClock()
        self._changed = asyncio.Event()

    def add(self, partition: int, key: bytes, fire_at: int) -> None:
        if key in self._known:
            return
        self._known[key] = partition
        heapq.heappush(self._heap, (fire_at, partition, key))
        self._changed.set()

    def drop_partition(self, partition: int) -> None:
        """Forget the partition's timers (it is no longer led here); in-flight proposals are left alone."""
        self._heap = [entry for entry in self._heap if entry[1] != partition]
        heapq.heapify(self._heap)
        for key in [key for key, p in self._known.items() if p == partition]:
            del self._known[key]
            self._failures.pop(key, None)
        self._changed.set()

    def pending(self, partition: int | None = None) -> list[tuple[int, bytes]]:
        """(fire_at, key) of the timers waiting to fire, soonest first."""
        return sorted((f, k) for f, p, k in self._heap if partition is None or p == partition)

    def due(self) -> bool:
        """Whether a timer's time has come."""
        return bool(self._heap) and self._heap[0][0] <= int(self._clock.time() * 1000)

    def fire_due(self) -> int:
        """Propose every timer whose time has come; returns the milliseconds until the next one (or -1)."""
        now = int(self._clock.time() * 1000)
        while self._heap and self._heap[0][0] <= now:
            _fire_at, partition, key = heapq.heappop(self._heap)
            del self._known[key]
            future = self._propose(partition, TimerFired(timer_key=key, now=now))
            future.add_done_callback(functools.partial(self._proposed, partition, key))
        return self._heap[0][0] - now if self._heap else -1

    async def run(self) -> None:
        """Fire timers as they fall due, forever."""
        while True:
            self._changed.clear()
            wait_ms = self.fire_due()
            wakeup: Timer | None = None
            if wait_ms >= 0:
                wakeup = self._clock.call_later(wait_ms / 1000, self._changed.set)
            try:
                await self._changed.wait()
            finally:
                if wakeup is not None:
                    wakeup.cancel()

    def _proposed(self, partition: int, key: bytes, future: asyncio.Future[int]) -> None:
        error = None if future.cancelled() else future.exception()
        if error is None and not future.cancelled():
            self._failures.pop(key, None)
            return
        if isinstance(error, Fenced | LogClosedError | WorkerUnavailable):
            return  # no longer our partition, or shutting down: the next leader loads the timer
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        delay = min(RETRY_INITIAL_MS * 2 ** (failures - 1), RETRY_MAX_MS)
        log.warning("partition %d: firing a timer failed (%s); retrying in %dms", partition, error, delay)
        self.add(partition, key, int(self._clock.time() * 1000) + delay)
