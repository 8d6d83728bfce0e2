"""Leader side of the state history's retention: keeps each partition's retentions in step with the schema
and its expired history trimmed, through `TrimStateHistory` records.

The state machine learns retentions only from its log, so replicas and replays agree. This task
proposes a record to a partition when this node starts leading it (the configured default may have
changed while it was down), when a schema change alters a retention, and at every cleanup interval
(`worker.cleanup-interval`) while the partition holds events older than their service's retention.
One record deletes a bounded number of events; the next is proposed once the previous one applied,
so trimming a long backlog proceeds in short apply steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from restate_server.log.records import Record, TrimStateHistory
from restate_server.rocksdb import Database
from restate_server.schema import model
from restate_server.storage import state_history

log = logging.getLogger(__name__)

MAX_RECORDS_PER_SWEEP = 100
"""Trim records one partition gets per wake-up at most (x `TRIM_BUDGET` events); the rest waits a turn."""

Retentions = dict[str, int]  # keyed service -> retention in ms (0 = history off)
Propose = Callable[[int, Record], "asyncio.Future[int]"]


class _Services(Protocol):
    def services(self) -> list[model.Service]: ...
    def add_listener(self, listener: Callable[[_Services], None]) -> Callable[[], None]: ...


class _Applied(Protocol):
    async def wait_applied(self, lsn: int) -> None: ...


class _Defaults(Protocol):
    @property
    def default_state_history_retention(self) -> float: ...


def retentions(services: Sequence[model.Service], config: _Defaults) -> Retentions:
    """Every keyed service's effective state history retention in ms: its override, else the default."""
    return {
        service.name: round(
            1000
            * (
                service.state_history_retention
                if service.state_history_retention is not None
                else config.default_state_history_retention
            )
        )
        for service in services
        if service.ty is not model.ServiceType.SERVICE
    }


class HistoryRetention:
    """One task per node, for the partitions this node leads."""

    def __init__(
        self,
        *,
        config: _Defaults,
        interval: float,
        services: _Services,
        db: Database,
        processors: Mapping[int, _Applied],
        propose: Propose,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._interval = interval
        self._services = services
        self._db = db
        self._processors = processors
        self._propose = propose
        self._clock = clock
        self._led: set[int] = set()
        self._sent: dict[int, Retentions] = {}  # partition -> the retentions its log last got from us
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], None] | None = None

    def start(self) -> None:
        self._unlisten = self._services.add_listener(lambda _services: self._wakeup.set())
        self._task = asyncio.get_running_loop().create_task(self._run(), name="state-history-retention")

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def on_leadership(self, partition: int) -> None:
        self._led.add(partition)
        self._sent.pop(partition, None)
        self._wakeup.set()

    def on_step_down(self, partition: int) -> None:
        self._led.discard(partition)
        self._sent.pop(partition, None)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # the interval passed: time for a sweep anyway
                async with asyncio.timeout(self._interval):
                    await self._wakeup.wait()
            self._wakeup.clear()
            for partition in sorted(self._led):
                try:
                    await self._sweep(partition)
                except Exception:  # a failed append: the next wake-up tries again
                    log.exception("partition %d: cannot trim the state history", partition)

    async def _sweep(self, partition: int) -> None:
        wanted = retentions(self._services.services(), self._config)
        for _ in range(MAX_RECORDS_PER_SWEEP):
            now = int(self._clock() * 1000)
            if self._sent.get(partition) == wanted and not self._expired(partition, wanted, now):
                return
            lsn = await self._propose(partition, TrimStateHistory(now=now, retention=dict(wanted)))
            self._sent[partition] = wanted
            await self._processors[partition].wait_applied(lsn)

    def _expired(self, partition: int, wanted: Retentions, now: int) -> bool:
        """True if some service's oldest event in the partition is past its retention."""
        for service, retention in wanted.items():
            oldest = state_history.oldest_ts(self._db, partition, service)
            if oldest is not None and oldest <= now - retention:
                return True
        return False
