"""The invoker's view of time: a monotonic clock for timeouts, the wall clock for records, timers.

Retries, backoff and the inactivity/abort timeouts all read time through this one seam, so unit tests
replace it with a virtual clock and step through minutes of backoff without waiting. Production uses
`LoopClock`, which is exactly what the code called directly before: `time.monotonic`, `time.time`
and the running loop's `call_later`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    """A scheduled callback that can still be called off (`asyncio.TimerHandle` is one)."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; only differences mean anything."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch, for timestamps that end up in records."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Run `callback` on the event loop after `delay` seconds."""
        ...


class LoopClock:
    """Real time, and timers on the running event loop."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)
