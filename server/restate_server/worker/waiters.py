"""Futures by which the ingress and admin API wait for what the partition processors decide.

Both kinds are keyed in memory only: a waiting HTTP request does not survive a restart, the
invocation it started does.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from restate_server.worker import actions as act


class Waiters:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._submits: dict[int, asyncio.Future[act.SubmitOutcome]] = {}
        self._completions: dict[bytes, list[asyncio.Future[act.InvocationCompleted]]] = {}

    def new_submit(self) -> tuple[int, asyncio.Future[act.SubmitOutcome]]:
        request_id = next(self._ids)
        future: asyncio.Future[act.SubmitOutcome] = asyncio.get_running_loop().create_future()
        self._submits[request_id] = future
        return request_id, future

    def drop_submit(self, request_id: int) -> None:
        self._submits.pop(request_id, None)

    def wait_completion(self, invocation_id: bytes) -> asyncio.Future[act.InvocationCompleted]:
        future: asyncio.Future[act.InvocationCompleted] = asyncio.get_running_loop().create_future()
        self._completions.setdefault(invocation_id, []).append(future)
        return future

    def drop_completion(self, invocation_id: bytes, future: asyncio.Future[Any]) -> None:
        futures = self._completions.get(invocation_id)
        if futures is not None and future in futures:
            futures.remove(future)
            if not futures:
                del self._completions[invocation_id]

    def submitted(self, outcome: act.SubmitOutcome) -> None:
        future = self._submits.pop(outcome.request_id, None)
        if future is not None and not future.done():
            future.set_result(outcome)

    def completed(self, done: act.InvocationCompleted) -> None:
        for future in self._completions.pop(done.invocation_id, []):
            if not future.done():
                future.set_result(done)
