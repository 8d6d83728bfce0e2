"""Futures by which the ingress and admin API wait for what the partition processors decide.

Both kinds are keyed in memory only: a waiting HTTP request does not survive a restart, the
invocation it started does. Each waiter remembers its partition, so that when this node stops
leading a partition its waiting requests are failed at once with a retryable error instead of
waiting for answers that will now be given elsewhere.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from restate_server.worker import actions as act


class Waiters:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._submits: dict[int, tuple[int, asyncio.Future[act.SubmitOutcome]]] = {}
        self._completions: dict[bytes, tuple[int, list[asyncio.Future[act.InvocationCompleted]]]] = {}

    def new_submit(self, partition: int) -> tuple[int, asyncio.Future[act.SubmitOutcome]]:
        request_id = next(self._ids)
        future: asyncio.Future[act.SubmitOutcome] = asyncio.get_running_loop().create_future()
        self._submits[request_id] = (partition, future)
        return request_id, future

    def drop_submit(self, request_id: int) -> None:
        self._submits.pop(request_id, None)

    def wait_completion(
        self, partition: int, invocation_id: bytes
    ) -> asyncio.Future[act.InvocationCompleted]:
        future: asyncio.Future[act.InvocationCompleted] = asyncio.get_running_loop().create_future()
        self._completions.setdefault(invocation_id, (partition, []))[1].append(future)
        return future

    def drop_completion(self, invocation_id: bytes, future: asyncio.Future[Any]) -> None:
        entry = self._completions.get(invocation_id)
        if entry is not None and future in entry[1]:
            entry[1].remove(future)
            if not entry[1]:
                del self._completions[invocation_id]

    def submitted(self, outcome: act.SubmitOutcome) -> None:
        entry = self._submits.pop(outcome.request_id, None)
        if entry is not None and not entry[1].done():
            entry[1].set_result(outcome)

    def completed(self, done: act.InvocationCompleted) -> None:
        _partition, futures = self._completions.pop(done.invocation_id, (0, []))
        for future in futures:
            if not future.done():
                future.set_result(done)

    def fail_partition(self, partition: int, error: Exception) -> int:
        """Fail every waiter of ``partition`` with ``error``; returns how many there were."""
        failed = 0
        for request_id, (p, submit) in list(self._submits.items()):
            if p == partition:
                del self._submits[request_id]
                failed += _fail(submit, error)
        for invocation_id, (p, futures) in list(self._completions.items()):
            if p == partition:
                del self._completions[invocation_id]
                failed += sum(_fail(future, error) for future in futures)
        return failed


def _fail(future: asyncio.Future[Any], error: Exception) -> int:
    if future.done():
        return 0
    future.set_exception(error)
    return 1
