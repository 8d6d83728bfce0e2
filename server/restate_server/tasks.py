"""Supervision of the node's long-lived asyncio tasks: every one has a name, an owner and a policy.

A long-lived task is meant to run until its owner stops it. Ending any other way (an exception, or
returning on its own, except for ``RETRY`` jobs) is a crash: the supervisor logs it with its traceback and applies the task's
policy, decided once per kind of task where it is spawned:

- ``RESTART``: run it again after a backoff (0.1 s doubling up to 10 s). For tasks whose state is
  either kept outside the task or re-derived from the store when they start, so a fresh run picks up
  where the dead one stopped: the timer service (its heap lives in the service object), a
  partition's outbox delivery (re-reads the outbox table), the retention cleaner (a new pass), the
  log trimmer (a new round), the memory releaser (a pending trim request outlives it).
- ``RETRY``: for a job that ends (loading a new leader's running invocations and timers in steps):
  returning is success; a crash runs it again from the start after the same backoff.
- ``FATAL``: stop the node with a non-zero exit code. For tasks whose in-memory state cannot be
  trusted after a crash and that the process rebuilds on start: the partition processors (applied
  LSN, leader epoch, waiters; a restart replays the log from the store's applied LSN and resumes
  leadership, which is exactly the recovery a crash needs).

Tasks the supervisor does not own, and why:

- the log's group-commit flusher (``log/providers/local.py``) lives only while appends are pending;
  a failed write (the way it fails: a full disk, an I/O error) fails the appends it held, and every
  later one, without leaving a gap (their callers retry), and the next append starts a new flusher.
  Past the write it only resolves futures; restarting it there could hand out LSNs twice, so a bug
  in that bookkeeping is not papered over;
- invocation tasks (``invoker/service.py``) are owned by the invoker, which logs a crashed attempt
  and retries it with backoff, like any failed attempt.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

RESTART_INITIAL_DELAY = 0.1  # seconds before the first restart
RESTART_MAX_DELAY = 10.0  # a task that keeps crashing is retried this often, not in a hot loop

Body = Callable[[], Coroutine[Any, Any, None]]
FatalHandler = Callable[[str, BaseException], None]


class Policy(enum.Enum):
    """What a crash of the task leads to (see the module docstring for who gets which)."""

    RESTART = "restart"
    RETRY = "retry"
    FATAL = "fatal"


class TaskEnded(Exception):
    """A long-lived task returned although nobody stopped it."""


@dataclass(slots=True)
class _Supervised:
    name: str
    body: Body
    policy: Policy
    task: asyncio.Task[None] | None = None
    restarts: int = 0
    restart_timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class Supervisor:
    """Owns named tasks; a crash is logged with its traceback, then restarts them or stops the node."""

    def __init__(self, on_fatal: FatalHandler) -> None:
        self._on_fatal = on_fatal
        self._tasks: dict[str, _Supervised] = {}
        self._stopping = False
        self.fatal: tuple[str, BaseException] | None = None
        """The first fatal crash: its task's name and error."""

    def spawn(self, name: str, body: Body, policy: Policy) -> None:
        """Run ``body()`` as the task ``name`` (unique among the running ones)."""
        if self._stopping:
            return
        if name in self._tasks:
            raise ValueError(f"a task named {name!r} is already supervised")
        entry = self._tasks[name] = _Supervised(name, body, policy)
        self._start(entry)

    def running(self, name: str) -> bool:
        """Whether the task is alive right now (not crashed, not waiting to restart)."""
        entry = self._tasks.get(name)
        return entry is not None and entry.task is not None and not entry.task.done()

    def restarts(self, name: str) -> int:
        entry = self._tasks.get(name)
        return 0 if entry is None else entry.restarts

    async def cancel(self, name: str) -> None:
        """Stop one task on purpose (not a crash) and wait for it to end."""
        entry = self._tasks.pop(name, None)
        if entry is not None:
            await _cancel([entry])

    def cancel_soon(self, name: str) -> None:
        """Stop one task on purpose without waiting (from synchronous code)."""
        entry = self._tasks.pop(name, None)
        if entry is not None:
            _cancel_now(entry)

    async def stop(self) -> None:
        """Stop every task; nothing restarts afterwards."""
        self._stopping = True
        entries = list(self._tasks.values())
        self._tasks.clear()
        await _cancel(entries)

    def _start(self, entry: _Supervised) -> None:
        entry.restart_timer = None
        entry.task = asyncio.get_running_loop().create_task(entry.body(), name=entry.name)
        entry.task.add_done_callback(lambda task: self._ended(entry, task))

    def _ended(self, entry: _Supervised, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._tasks.get(entry.name) is not entry:
            return  # stopped by its owner
        if self._stopping:
            return
        error = task.exception()
        if error is None and entry.policy is Policy.RETRY:
            del self._tasks[entry.name]  # its job is done
            return
        error = error or TaskEnded(f"task {entry.name} returned although nobody stopped it")
        match entry.policy:
            case Policy.RESTART | Policy.RETRY:
                delay = min(RESTART_INITIAL_DELAY * 2**entry.restarts, RESTART_MAX_DELAY)
                entry.restarts += 1
                log.error(
                    "task %s crashed; restarting it in %.1fs (restart %d)",
                    entry.name,
                    delay,
                    entry.restarts,
                    exc_info=error,
                )
                entry.restart_timer = asyncio.get_running_loop().call_later(delay, self._start, entry)
            case Policy.FATAL:
                log.critical("task %s crashed; stopping the node", entry.name, exc_info=error)
                if self.fatal is None:
                    self.fatal = (entry.name, error)
                self._on_fatal(entry.name, error)


def _cancel_now(entry: _Supervised) -> asyncio.Task[None] | None:
    if entry.restart_timer is not None:
        entry.restart_timer.cancel()
    if entry.task is not None and not entry.task.done():
        entry.task.cancel()
        return entry.task
    return None


async def _cancel(entries: list[_Supervised]) -> None:
    tasks = [task for task in map(_cancel_now, entries) if task is not None]
    await asyncio.gather(*tasks, return_exceptions=True)
