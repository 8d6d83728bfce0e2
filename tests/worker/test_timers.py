"""The timer service on a virtual clock: firing order, retries of failed proposals, dropped partitions."""

from __future__ import annotations

import asyncio

import pytest
from invoker_fakes import FakeClock
from restate_server.log.api import Fenced, failed
from restate_server.log.records import TimerFired
from restate_server.worker import timers as timers_mod
from restate_server.worker.errors import WorkerUnavailable
from restate_server.worker.timers import TimerService
from worker_env import disk_full, eventually

NOW = 1_700_000_000_000  # the virtual clock's wall time (ms)


class Proposals:
    """Records what the service proposes; `outcomes` decides how each proposal ends (default: lands)."""

    def __init__(self) -> None:
        self.fired: list[tuple[int, bytes, int]] = []
        self.outcomes: list[BaseException | None] = []

    def __call__(self, partition: int, record: TimerFired) -> asyncio.Future[int]:
        self.fired.append((partition, record.timer_key, record.now))
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            return failed(outcome)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        future.set_result(len(self.fired))
        return future


async def test_due_timers_fire_in_order_and_later_ones_wait() -> None:
    clock, proposals = FakeClock(), Proposals()
    service = TimerService(proposals, clock=clock)
    service.add(0, b"b", NOW + 20)
    service.add(1, b"a", NOW + 10)
    service.add(0, b"c", NOW + 1_000)
    service.add(0, b"c", NOW + 1_000)  # known already
    assert not service.due()
    assert service.fire_due() == 10
    clock.advance(0.02)
    assert service.fire_due() == 980
    assert proposals.fired == [(1, b"a", NOW + 20), (0, b"b", NOW + 20)]
    assert service.pending() == [(NOW + 1_000, b"c")]


async def test_a_timer_whose_proposal_failed_fires_again_after_a_backoff() -> None:
    clock, proposals = FakeClock(), Proposals()
    proposals.outcomes = [disk_full(), disk_full()]
    service = TimerService(proposals, clock=clock)
    service.add(0, b"t", NOW)
    service.fire_due()
    await asyncio.sleep(0)  # the failure is seen
    assert service.pending(0) == [(NOW + timers_mod.RETRY_INITIAL_MS, b"t")]
    clock.advance(timers_mod.RETRY_INITIAL_MS / 1000)
    service.fire_due()
    await asyncio.sleep(0)
    assert service.pending(0) == [(clock_ms(clock) + 2 * timers_mod.RETRY_INITIAL_MS, b"t")]
    clock.advance(1)
    service.fire_due()
    await asyncio.sleep(0)
    assert service.pending() == []
    assert [key for _, key, _ in proposals.fired] == [b"t", b"t", b"t"]


async def test_a_timer_of_a_partition_led_elsewhere_is_not_retried() -> None:
    clock, proposals = FakeClock(), Proposals()
    proposals.outcomes = [Fenced(0, 1, 2), WorkerUnavailable("not led")]
    service = TimerService(proposals, clock=clock)
    service.add(0, b"x", NOW)
    service.add(0, b"y", NOW)
    service.fire_due()
    await asyncio.sleep(0)
    assert service.pending() == []


async def test_dropping_a_partition_forgets_only_its_timers() -> None:
    service = TimerService(Proposals(), clock=FakeClock())
    service.add(0, b"a", NOW + 5)
    service.add(1, b"b", NOW + 5)
    service.drop_partition(0)
    assert service.pending() == [(NOW + 5, b"b")]
    service.add(0, b"a", NOW + 5)  # led again: loaded again
    assert len(service.pending()) == 2


async def test_the_running_service_sleeps_until_the_next_timer() -> None:
    clock, proposals = FakeClock(), Proposals()
    service = TimerService(proposals, clock=clock)
    task = asyncio.create_task(service.run())
    try:
        service.add(0, b"a", NOW + 50)
        await eventually(lambda: clock.pending == [pytest.approx(0.05)])
        assert proposals.fired == []
        clock.advance(0.05)
        await eventually(lambda: proposals.fired)
        assert proposals.fired == [(0, b"a", NOW + 50)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def clock_ms(clock: FakeClock) -> int:
    return int(clock.time() * 1000)
