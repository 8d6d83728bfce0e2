"""The start-up-only test hook that crashes worker tasks on purpose."""

from __future__ import annotations

import asyncio

import pytest
from invoker_fakes import FakeClock
from restate_server.log.api import failed
from restate_server.worker import fault_injection
from restate_server.worker.fault_injection import ENV, InjectedCrash
from restate_server.worker.timers import TimerService
from sm_env import invoke
from worker_env import WorkerEnv


async def test_without_the_variable_nothing_is_installed(worker: WorkerEnv) -> None:
    processor = worker.processors[0]
    before = processor._apply_live
    fault_injection.install({}, worker.processors.values(), worker.leadership.timers)
    assert processor._apply_live == before


async def test_a_processor_crashes_on_the_named_key(worker: WorkerEnv) -> None:
    processor = worker.processors[0]
    fault_injection.install({ENV: "crash-processor-on-key=boom"}, [processor], worker.leadership.timers)
    await processor._apply_live([(1, invoke(n=1))])
    with pytest.raises(InjectedCrash):
        await processor._apply_live([(2, invoke("Counter", key="boom"))])


async def test_the_timer_service_crashes_once() -> None:
    clock = FakeClock()
    service = TimerService(lambda p, r: failed(RuntimeError("x")), clock=clock)
    fault_injection.install({ENV: "crash-timers-once"}, [], service)
    service.fire_due()  # nothing due: no crash
    service.add(0, b"t", int(clock.time() * 1000))
    with pytest.raises(InjectedCrash):
        service.fire_due()
    service.fire_due()
    await asyncio.sleep(0)
    assert service.pending() != []  # fired, failed, queued again


def test_an_unknown_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        fault_injection.install({ENV: "explode"}, [], TimerService(lambda p, r: failed(RuntimeError())))
