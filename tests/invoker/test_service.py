"""The invoker's task loop on a virtual clock: retries, backoff, give-up, concurrency, abort, races."""

from __future__ import annotations

import asyncio
import logging

import pytest
from invoker_fakes import (
    END,
    INVOCATION_ID,
    FakeClock,
    FakeHost,
    FakeStream,
    FakeTransport,
    eventually,
    frame,
    new_invoker,
    policy,
)
from restate_server.ids import InvocationId
from restate_server.invoker.errors import AttemptError
from restate_server.invoker.service import Invoker
from restate_server.log.records import InvokerEffect
from restate_server.protocol import codec, protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T

OTHER = InvocationId.for_workflow("Obj", "other").to_bytes()
SUSPEND = frame(pb.SuspensionMessageV6(waiting_completions=[1]))


async def opened(transport: FakeTransport) -> FakeStream:
    return await asyncio.wait_for(transport.h2.opened.get(), 5)


def retry_count(stream: FakeStream) -> int:
    start = codec.decode_frame(codec.Decoder().feed(stream.request.body)[0])
    assert isinstance(start, pb.StartMessage)
    return start.retry_count_since_last_stored_entry


async def backing_off(invoker: Invoker, invocation_id: bytes = INVOCATION_ID) -> None:
    state = invoker.invocations[invocation_id]
    await eventually(lambda: state.retry_timer is not None and state.task is None)


async def gone(invoker: Invoker, invocation_id: bytes = INVOCATION_ID) -> None:
    await eventually(lambda: invocation_id not in invoker.invocations)


async def test_failed_attempts_back_off_exponentially_then_succeed() -> None:
    host, clock = FakeHost(), FakeClock()
    host.add(retry=policy(initial_interval=0.5, exponentiation_factor=2.0, max_interval=10.0))
    invoker, transport = new_invoker(host, clock)
    invoker.start(0, INVOCATION_ID)
    (await opened(transport)).reply(status=500)
    state = invoker.invocations[INVOCATION_ID]
    await backing_off(invoker)
    assert (state.attempts, state.last_failure_code) == (1, "RT0006")
    assert state.last_failure == "unexpected status code 500 from the deployment"
    assert state.next_retry_at == clock.time() + 0.5
    assert state.task is None  # backing off holds no task, no slot
    assert not state.in_flight
    assert clock.pending == [0.5]
    clock.advance(0.5)
    second = await opened(transport)
    assert retry_count(second) == 1
    second.fail(ConnectionResetError("gone"))
    await backing_off(invoker)
    assert (state.attempts, state.last_failure_code, clock.pending) == (2, "RT0010", [1.0])
    clock.advance(1.0)
    third = await opened(transport)
    third.reply(END, **{"x-restate-server": "sdk/2"})
    await gone(invoker)
    assert host.terminals() == [["end"]]
    assert state.server == "sdk/2"


async def test_sdk_retry_hint_overrides_the_backoff_once() -> None:
    host, clock = FakeHost(), FakeClock()
    host.add(retry=policy(initial_interval=0.5))
    invoker, transport = new_invoker(host, clock)
    invoker.start(0, INVOCATION_ID)
    (await opened(transport)).reply(frame(pb.ErrorMessage(code=500, message="later", next_retry_delay=7000)))
    state = invoker.invocations[INVOCATION_ID]
    await backing_off(invoker)
    assert (state.last_failure_code, clock.pending) == ("RT0007", [7.0])
    clock.advance(7.0)
    (await opened(transport)).reply(status=500)
    await eventually(lambda: state.attempts == 2)
    await backing_off(invoker)
    assert clock.pending == [1.0]  # back to the policy: 0.5 * 2^(2-1)
    invoker.abort(INVOCATION_ID)


@pytest.mark.parametrize("on_max", ["pause", "kill"])
async def test_giving_up_after_max_attempts_follows_the_policy(on_max: str) -> None:
    host, clock = FakeHost(), FakeClock()
    host.add(retry=policy(max_attempts=2, on_max_attempts=on_max))
    invoker, transport = new_invoker(host, clock)
    invoker.start(0, INVOCATION_ID)
    (await opened(transport)).reply(frame(pb.EndMessage()) + b"junk-after-end")
    await backing_off(invoker)
    assert clock.pending == [0.5]
    clock.advance(0.5)
    (await opened(transport)).reply(b"\x04\x03\x00\x00\x00\x00\x00\x04\xff\xff\xff\xff")
    await gone(invoker)
    [terminal] = host.terminals()
    assert terminal[:2] == [on_max, 500]
    assert "cannot decode message type SetStateCommand" in terminal[2]
    assert clock.pending == []


@pytest.mark.parametrize(("behavior", "expected"), [(pb.PAUSE, "pause"), (pb.FAIL, "kill")])
async def test_sdk_error_behaviour_gives_up_at_once(behavior: int, expected: str) -> None:
    host, clock = FakeHost(), FakeClock()
    host.add(version=7, retry=policy(max_attempts=None, on_max_attempts="pause"))
    invoker, transport = new_invoker(host, clock)
    invoker.start(0, INVOCATION_ID)
    error = pb.ErrorMessage(code=500, message="stop", behavior=behavior)  # type: ignore[arg-type]
    (await opened(transport)).reply(frame(error), version=7)
    await gone(invoker)
    assert host.terminals() == [[expected, 500, "500 stop"]]


async def test_snapshot_error_is_retried_after_a_second() -> None:
    host, clock = FakeHost(), FakeClock()
    results: list[object] = [AttemptError("RT0011", "no deployment"), None]
    host.snapshot = lambda partition, inv: results.pop(0)  # type: ignore[assignment,method-assign,return-value]
    invoker, _transport = new_invoker(host, clock)
    invoker.start(0, INVOCATION_ID)
    state = invoker.invocations[INVOCATION_ID]
    await backing_off(invoker)
    assert (state.last_failure_code, clock.pending) == ("RT0011", [1.0])
    clock.advance(1.0)
    await gone(invoker)


async def test_concurrency_limit_queues_the_rest() -> None:
    host, clock = FakeHost(), FakeClock()
    third = InvocationId.for_workflow("Obj", "third").to_bytes()
    for inv in (INVOCATION_ID, OTHER, third):
        host.add(inv)
    invoker, transport = new_invoker(host, clock, concurrency_limit=1)
    for inv in (INVOCATION_ID, OTHER, third):
        invoker.start(0, inv)
    first = await opened(transport)
    assert transport.h2.opened.empty()
    invoker.abort(OTHER)  # queued: dropped without ever running
    first.reply(END)
    second = await opened(transport)
    assert second.request.headers["x-restate-invocation-id"] == str(InvocationId.from_bytes(third))
    second.reply(END)
    await gone(invoker, third)
    assert invoker._active == 0
    assert len(host.terminals()) == 2


async def test_backing_off_invocations_do_not_hold_slots() -> None:
    host, clock = FakeHost(), FakeClock()
    host.add(INVOCATION_ID)
    host.add(OTHER)
    invoker, transport = new_invoker(host, clock, concurrency_limit=1)
    invoker.start(0, INVOCATION_ID)
    invoker.start(0, OTHER)
    (await opened(transport)).reply(status=503)
    other = await opened(transport)  # the failed one waits on a timer; the queued one runs
    assert other.request.headers["x-restate-invocation-id"] == str(InvocationId.from_bytes(OTHER))
    clock.advance(0.5)  # the retry finds no free slot and queues
    await asyncio.sleep(0)
    assert transport.h2.opened.empty()
    other.reply(END)
    (await opened(transport)).reply(END)
    await gone(invoker)


async def test_abort_running_attempt() -> None:
    host, clock = FakeHost(), FakeClock()
    host.add()
    invoker, transport = new_invoker(host, clock)
    invoker.start(0, INVOCATION_ID)
    stream = await opened(transport)
    state = invoker.invocations[INVOCATION_ID]
    invoker.abort(INVOCATION_ID)
    assert state.killed
    assert stream.was_reset
    await eventually(lambda: state.task is None)
    assert INVOCATION_ID not in invoker.invocations
    assert clock.pending == []
    assert host.proposals == []
    invoker.abort(INVOCATION_ID)  # twice is harmless


async def test_abort_backing_off_invocation_cancels_the_retry() -> None:
    host, clock = FakeHost(), FakeClock()
    host.add()
    invoker, transport = new_invoker(host, clock)
    invoker.start(0, INVOCATION_ID)
    (await opened(transport)).reply(status=500)
    await backing_off(invoker)
    invoker.abort(INVOCATION_ID)
    assert clock.pending == []
    clock.advance(60)
    await asyncio.sleep(0)
    assert transport.h2.opened.empty()
    assert INVOCATION_ID not in invoker.invocations


async def test_start_while_backing_off_retries_now() -> None:
    host, clock = FakeHost(), FakeClock()
    host.add()
    invoker, transport = new_invoker(host, clock)
    invoker.start(0, INVOCATION_ID)
    (await opened(transport)).reply(status=500)
    await backing_off(invoker)
    invoker.start(0, INVOCATION_ID)  # e.g. a notification resumed it: no need to wait
    assert clock.pending == []
    (await opened(transport)).reply(END)
    await gone(invoker)


async def test_start_while_running_runs_another_attempt_after_this_one() -> None:
    host, clock = FakeHost(), FakeClock()
    host.add()
    invoker, transport = new_invoker(host, clock)
    real_propose = host.propose

    def propose_then_resume(partition: int, effect: InvokerEffect) -> asyncio.Future[int]:
        applied = real_propose(partition, effect)
        host.add()  # the suspension is applied, then a notification resumes the invocation
        return applied

    host.propose = propose_then_resume  # type: ignore[method-assign]
    invoker.start(0, INVOCATION_ID)
    first = await opened(transport)
    invoker.start(0, INVOCATION_ID)  # the resume's start, while the attempt still runs
    first.reply(SUSPEND)
    second = await opened(transport)
    host.propose = real_propose  # type: ignore[method-assign]
    second.reply(END)
    await gone(invoker)
    assert host.terminals() == [["suspend", [1], [], []], ["end"]]


async def test_start_landing_between_the_last_check_and_the_task_end_runs_again() -> None:
    """The window `Invoker._done` closes: the task already decided to stop when a start came in."""
    host, clock = FakeHost(), FakeClock()
    invoker, transport = new_invoker(host, clock)
    real_snapshot = host.snapshot

    def snapshot_then_start(partition: int, inv: bytes) -> object:
        # the invocation is not running yet (None: the task will end) and its start arrives now
        host.snapshot = real_snapshot  # type: ignore[method-assign]
        host.add()
        invoker.start(partition, inv)
        return None

    host.snapshot = snapshot_then_start  # type: ignore[assignment,method-assign]
    invoker.start(0, INVOCATION_ID)
    (await opened(transport)).reply(END)
    await gone(invoker)
    assert host.terminals() == [["end"]]


async def test_a_killed_invocation_is_not_restarted_by_a_late_start() -> None:
    host, clock = FakeHost(), FakeClock()
    host.add()
    invoker, transport = new_invoker(host, clock)
    invoker.start(0, INVOCATION_ID)
    await opened(transport)
    state = invoker.invocations[INVOCATION_ID]
    state.restart = True
    invoker.abort(INVOCATION_ID)
    await eventually(lambda: state.task is None)
    assert transport.h2.opened.empty()


async def test_notifications_reach_the_running_attempt_only() -> None:
    host, clock = FakeHost(), FakeClock()
    host.add()
    invoker, transport = new_invoker(host, clock)
    invoker.notify(INVOCATION_ID, 1, T.SLEEP_COMPLETION, b"early", None)  # not running: dropped
    invoker.start(0, INVOCATION_ID)
    stream = await opened(transport)
    invoker.notify(INVOCATION_ID, 1, T.SLEEP_COMPLETION, b"\x08\x01", None)
    assert stream.sent == [codec.encode_frame(T.SLEEP_COMPLETION, b"\x08\x01")]
    stream.reply(END)
    await gone(invoker)


async def test_a_crashing_task_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    host, clock = FakeHost(), FakeClock()
    host.add()
    working = host.snapshot

    def broken(partition: int, inv: bytes) -> None:
        raise RuntimeError("store unavailable")

    host.snapshot = broken  # type: ignore[assignment,method-assign]
    invoker, transport = new_invoker(host, clock)
    with caplog.at_level(logging.ERROR, logger="restate_server.invoker.service"):
        invoker.start(0, INVOCATION_ID)
        await backing_off(invoker)
    assert "its task crashed; retrying" in caplog.text
    assert "RuntimeError: store unavailable" in caplog.text  # the traceback
    assert (
        invoker.invocations[INVOCATION_ID].last_failure == "internal error: RuntimeError('store unavailable')"
    )
    host.snapshot = working  # type: ignore[method-assign]
    clock.advance(clock.pending[0])
    (await opened(transport)).reply(END)
    await gone(invoker)
    assert host.terminals() == [["end"]]


async def test_close_stops_everything() -> None:
    host, clock = FakeHost(), FakeClock()
    host.add(INVOCATION_ID)
    host.add(OTHER)
    invoker, transport = new_invoker(host, clock)
    invoker.start(0, INVOCATION_ID)
    invoker.start(0, OTHER)
    (await opened(transport)).reply(status=500)
    await opened(transport)
    await backing_off(invoker)
    await invoker.close()
    assert invoker.invocations == {}
    assert clock.pending == []
    assert transport.http1.closed


async def test_limits_reach_the_attempts() -> None:
    host, clock = FakeHost(), FakeClock()
    host.add(pinned=True)
    invoker, transport = new_invoker(host, clock, message_size_limit=100, message_size_warning=10)
    invoker.start(0, INVOCATION_ID)
    (await opened(transport)).reply(frame(pb.OutputCommandMessage(value=pb.Value(content=b"x" * 200))))
    state = invoker.invocations[INVOCATION_ID]
    await backing_off(invoker)
    assert state.last_failure_code == "RT0003"
    invoker.abort(INVOCATION_ID)


async def test_start_during_a_failing_attempt_retries_now_and_only_once() -> None:
    host, clock = FakeHost(), FakeClock()
    host.add()
    invoker, transport = new_invoker(host, clock)
    invoker.start(0, INVOCATION_ID)
    first = await opened(transport)
    invoker.start(0, INVOCATION_ID)
    first.reply(status=500)
    second = await opened(transport)
    assert clock.pending == [60.0]  # the new attempt's inactivity timer; no retry timer as well
    second.reply(END)
    await gone(invoker)
    assert invoker._active == 0
    assert transport.h2.opened.empty()


async def test_aborted_then_restarted_while_queued_runs_once() -> None:
    host, clock = FakeHost(), FakeClock()
    host.add(INVOCATION_ID)
    host.add(OTHER)
    invoker, transport = new_invoker(host, clock, concurrency_limit=1)
    invoker.start(0, INVOCATION_ID)
    invoker.start(0, OTHER)
    invoker.abort(OTHER)
    invoker.start(0, OTHER)  # queued twice now: the stale entry must not run it a second time
    (await opened(transport)).reply(END)
    (await opened(transport)).reply(END)
    await gone(invoker, OTHER)
    assert transport.h2.opened.empty()
    assert invoker._active == 0
