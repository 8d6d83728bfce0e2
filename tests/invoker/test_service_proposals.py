"""Effects that do not land (the log's disk is full): the attempt stops, the invocation backs off and
retries, not counted against its retry policy, and never goes on as if the effect had landed."""

from __future__ import annotations

import asyncio
import errno
from dataclasses import dataclass, field

import pytest
from invoker_fakes import (
    END,
    INVOCATION_ID,
    FakeClock,
    FakeHost,
    FakeStream,
    FakeTransport,
    frame,
    new_invoker,
    policy,
)
from restate_server.invoker import service as service_mod
from restate_server.log.api import LogClosedError, failed
from restate_server.log.records import InvokerEffect
from restate_server.protocol import protocol_pb2 as pb

SET_STATE = frame(pb.SetStateCommandMessage(key=b"k", value=pb.Value(content=b"v")))


@dataclass
class FlakyHost(FakeHost):
    """Proposals fail with `error` while `failing` is positive (one per proposal)."""

    failing: int = 0
    error: BaseException = field(default_factory=lambda: OSError(errno.ENOSPC, "No space left on device"))

    def propose(self, partition: int, effect: InvokerEffect) -> asyncio.Future[int]:
        if self.failing:
            self.failing -= 1
            self.proposals.append(effect)
            return failed(self.error)
        return super().propose(partition, effect)


async def opened(transport: FakeTransport) -> FakeStream:
    return await asyncio.wait_for(transport.h2.opened.get(), 5)


async def test_a_failed_effect_ends_the_attempt_which_is_retried_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host, clock = FlakyHost(failing=1), FakeClock()
    host.add(retry=policy(max_attempts=1))  # a counted failure would kill the invocation at once
    invoker, transport = new_invoker(host, clock)
    invoker.start(0, INVOCATION_ID)
    stream = await opened(transport)
    stream.reply(SET_STATE)  # proposed: fails
    await asyncio.sleep(0)
    stream.feed(END)  # arrives after the failure: must not be proposed as if the state had landed
    state = invoker.invocations[INVOCATION_ID]
    async with asyncio.timeout(5):
        while state.retry_timer is None:  # noqa: ASYNC110 - the invoker's state has no event
            await asyncio.sleep(0)
    assert stream.was_reset
    assert [p.terminal for p in host.proposals] == [None]  # no End proposed after the failed effect
    assert state.attempts == 0  # not the handler's fault: not counted
    assert state.last_failure_code == "RT0006"
    assert "could not be appended to the log" in (state.last_failure or "")
    assert clock.pending == [pytest.approx(service_mod.PROPOSAL_RETRY_INITIAL)]
    clock.advance(service_mod.PROPOSAL_RETRY_INITIAL)
    retry = await opened(transport)  # replays the journal as the store has it
    retry.reply(SET_STATE, END)
    async with asyncio.timeout(5):
        while INVOCATION_ID in invoker.invocations:  # noqa: ASYNC110
            await asyncio.sleep(0)
    assert host.terminals() == [["end"]]


async def test_repeated_failures_back_off_exponentially() -> None:
    host, clock = FlakyHost(failing=2), FakeClock()
    host.add()
    invoker, transport = new_invoker(host, clock)
    invoker.start(0, INVOCATION_ID)
    for delay in (service_mod.PROPOSAL_RETRY_INITIAL, 2 * service_mod.PROPOSAL_RETRY_INITIAL):
        (await opened(transport)).reply(SET_STATE)
        state = invoker.invocations[INVOCATION_ID]
        async with asyncio.timeout(5):
            while state.retry_timer is None:  # noqa: ASYNC110
                await asyncio.sleep(0)
        assert clock.pending == [pytest.approx(delay)]
        clock.advance(delay)
    (await opened(transport)).reply(END)
    async with asyncio.timeout(5):
        while INVOCATION_ID in invoker.invocations:  # noqa: ASYNC110
            await asyncio.sleep(0)


async def test_a_closed_log_ends_the_task_quietly() -> None:
    host, clock = FlakyHost(failing=1, error=LogClosedError("log is closed")), FakeClock()
    host.add()
    invoker, transport = new_invoker(host, clock)
    invoker.start(0, INVOCATION_ID)
    (await opened(transport)).reply(SET_STATE)
    async with asyncio.timeout(5):
        while INVOCATION_ID in invoker.invocations:  # noqa: ASYNC110
            await asyncio.sleep(0)
    assert clock.pending == []  # no retry: the node is shutting down
