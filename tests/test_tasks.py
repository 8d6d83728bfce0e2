"""The supervisor: crashes are logged with their traceback, then restarted or fatal; owners stop tasks."""

from __future__ import annotations

import asyncio
import logging

import pytest
from restate_server import tasks
from restate_server.tasks import Policy, Supervisor, TaskEnded


@pytest.fixture(autouse=True)
def _fast_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "RESTART_INITIAL_DELAY", 0.001)


async def _until(check: object) -> None:
    async with asyncio.timeout(5):
        while not check():  # type: ignore[operator]  # noqa: ASYNC110 - polling the supervisor's state
            await asyncio.sleep(0.001)


async def test_a_crashed_restart_task_is_logged_and_run_again(caplog: pytest.LogCaptureFixture) -> None:
    runs = 0
    healthy = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError(f"bug {runs}")
        healthy.set()
        await asyncio.Event().wait()

    supervisor = Supervisor(on_fatal=lambda name, error: pytest.fail("not fatal"))
    with caplog.at_level(logging.ERROR, logger="restate_server.tasks"):
        supervisor.spawn("flaky", flaky, Policy.RESTART)
        await asyncio.wait_for(healthy.wait(), 5)
    assert supervisor.running("flaky")
    assert supervisor.restarts("flaky") == 2
    assert "task flaky crashed; restarting it" in caplog.text
    assert "RuntimeError: bug 1" in caplog.text
    assert "Traceback" in caplog.text
    await supervisor.stop()
    assert not supervisor.running("flaky")


async def test_a_crashed_fatal_task_stops_the_node(caplog: pytest.LogCaptureFixture) -> None:
    fatal: list[tuple[str, BaseException]] = []

    async def broken() -> None:
        raise ValueError("corrupt state")

    supervisor = Supervisor(on_fatal=lambda name, error: fatal.append((name, error)))
    with caplog.at_level(logging.CRITICAL, logger="restate_server.tasks"):
        supervisor.spawn("partition-0", broken, Policy.FATAL)
        await _until(lambda: fatal)
    [(name, error)] = fatal
    assert name == "partition-0"
    assert isinstance(error, ValueError)
    assert supervisor.fatal == (name, error)
    assert not supervisor.running("partition-0")
    assert "task partition-0 crashed; stopping the node" in caplog.text
    await supervisor.stop()


async def test_a_task_that_returns_on_its_own_has_crashed() -> None:
    fatal: list[tuple[str, BaseException]] = []

    async def quits() -> None:
        return None

    supervisor = Supervisor(on_fatal=lambda name, error: fatal.append((name, error)))
    supervisor.spawn("quits", quits, Policy.FATAL)
    await _until(lambda: fatal)
    assert isinstance(fatal[0][1], TaskEnded)
    await supervisor.stop()


async def test_tasks_stopped_by_their_owner_are_not_restarted() -> None:
    started = 0

    async def forever() -> None:
        nonlocal started
        started += 1
        await asyncio.Event().wait()

    supervisor = Supervisor(on_fatal=lambda name, error: pytest.fail("not fatal"))
    supervisor.spawn("a", forever, Policy.RESTART)
    supervisor.spawn("b", forever, Policy.RESTART)
    with pytest.raises(ValueError, match="already supervised"):
        supervisor.spawn("a", forever, Policy.RESTART)
    await _until(lambda: started == 2)
    await supervisor.cancel("a")
    supervisor.cancel_soon("b")
    await asyncio.sleep(0.01)
    assert (started, supervisor.running("a"), supervisor.running("b")) == (2, False, False)
    await supervisor.cancel("missing")  # nothing to do
    await supervisor.stop()
    supervisor.spawn("late", forever, Policy.RESTART)  # after stop: ignored
    assert not supervisor.running("late")


async def test_a_task_waiting_to_restart_is_not_restarted_after_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "RESTART_INITIAL_DELAY", 0.05)
    runs = 0

    async def crash() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("bug")

    supervisor = Supervisor(on_fatal=lambda name, error: pytest.fail("not fatal"))
    supervisor.spawn("crash", crash, Policy.RESTART)
    await _until(lambda: runs == 1 and not supervisor.running("crash"))
    await supervisor.stop()
    await asyncio.sleep(0.1)
    assert runs == 1


async def test_a_retry_job_runs_until_it_returns() -> None:
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("first try fails")

    supervisor = Supervisor(on_fatal=lambda name, error: pytest.fail("not fatal"))
    supervisor.spawn("job", job, Policy.RETRY)
    await _until(lambda: runs == 2 and not supervisor.running("job"))
    await asyncio.sleep(0.01)
    assert runs == 2  # done: not run again
    supervisor.spawn("job", job, Policy.RETRY)  # the name is free again
    await _until(lambda: runs == 3)
    await supervisor.stop()
