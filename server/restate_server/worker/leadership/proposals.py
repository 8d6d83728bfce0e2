"""How leadership proposals are retried: with backoff until they land, except when they never will.

A proposal that failed on an I/O error (a full disk, a log write that failed) is tried again, with a
delay that doubles up to a few seconds, for as long as its partition is led here. `Fenced` (another
leader took over), `LogClosedError` (the node is shutting down) and `WorkerUnavailable` (this node
no longer leads the partition) end the retries: the next leader re-derives the work from the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from restate_server.log.api import Fenced, LogClosedError
from restate_server.worker.errors import WorkerUnavailable

log = logging.getLogger(__name__)

RETRY_INITIAL = 0.1  # seconds
RETRY_MAX = 5.0

FINAL_ERRORS = (Fenced, LogClosedError, WorkerUnavailable)
"""Failures after which retrying the same proposal is pointless."""


def backoff(failures: int) -> float:
    """Seconds to wait after the ``failures``-th consecutive failure (>= 1)."""
    return float(min(RETRY_INITIAL * 2 ** (failures - 1), RETRY_MAX))


async def until_landed(submit: Callable[[], asyncio.Future[int]], what: str) -> int:
    """Submit until the append lands; returns its LSN. Raises the final errors (`FINAL_ERRORS`)."""
    failures = 0
    while True:
        try:
            return await submit()
        except FINAL_ERRORS:
            raise
        except Exception as exc:  # an I/O error: the log recovers once its disk does
            failures += 1
            delay = backoff(failures)
            log.warning("%s failed (%s); retrying in %.1fs (attempt %d)", what, exc, delay, failures)
            await asyncio.sleep(delay)
