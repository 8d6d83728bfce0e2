"""TEST HOOK, never set in production: crash a worker task on purpose, to test its supervision.

`RPY_TEST_FAULT` (not `RESTATE_*`: those are configuration keys) is read once, when the node starts
(`install`); unset (always, outside the supervision tests) nothing here is installed and the
production path is untouched. Values:

- ``crash-processor-on-key=<key>``: a partition processor raises when it applies a batch holding an
  `Invoke` for object key ``<key>`` (before committing it: the record is replayed on restart);
- ``crash-timers-once``: the timer service raises the first time a timer is due (before firing it,
  so the timer fires once the task is restarted).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from restate_server.log.api import LogEntry
from restate_server.log.records import Invoke
from restate_server.worker.processor import PartitionProcessor
from restate_server.worker.timers import TimerService

log = logging.getLogger(__name__)

ENV = "RPY_TEST_FAULT"


class InjectedCrash(RuntimeError):
    """The crash a test asked for."""


def install(env: Mapping[str, str], processors: Iterable[PartitionProcessor], timers: TimerService) -> None:
    fault = env.get(ENV)
    if not fault:
        return
    log.warning("TEST HOOK: injecting fault %r (%s is set)", fault, ENV)
    name, _, arg = fault.partition("=")
    match name:
        case "crash-processor-on-key":
            for processor in processors:
                _crash_processor_on_key(processor, arg)
        case "crash-timers-once":
            _crash_timers_once(timers)
        case _:
            raise ValueError(f"{ENV}: unknown fault {fault!r}")


def _crash_processor_on_key(processor: PartitionProcessor, key: str) -> None:
    apply_live = processor._apply_live

    async def crashing(batch: list[LogEntry]) -> None:
        if any(isinstance(record, Invoke) and record.key == key for _, record in batch):
            raise InjectedCrash(f"injected crash of partition {processor.partition} on key {key!r}")
        await apply_live(batch)

    processor._apply_live = crashing  # type: ignore[method-assign]


def _crash_timers_once(timers: TimerService) -> None:
    fire_due = timers.fire_due
    crashed = False

    def crashing() -> int:
        nonlocal crashed
        if not crashed and timers.due():
            crashed = True
            raise InjectedCrash("injected crash of the timer service")
        return fire_due()

    timers.fire_due = crashing  # type: ignore[method-assign]
