"""One attempt against a deployment played by the test: replay, effects, limits, timeouts, failures."""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass, field
from typing import Any

import pytest
from invoker_fakes import (
    END,
    INVOCATION_ID,
    FakeClock,
    FakeStream,
    FakeTransport,
    frame,
    snapshot,
)
from restate_server.invoker.attempt import Attempt, MessageLimits, Outcome, Snapshot, replay_bytes
from restate_server.invoker.errors import AttemptError
from restate_server.log.records import Ended, InvokerEffect, Suspended
from restate_server.protocol import codec, protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.storage.journal import JournalEntry

SLEEP = frame(pb.SleepCommandMessage(wake_up_time=5, result_completion_id=1))
OUTPUT = frame(pb.OutputCommandMessage(value=pb.Value(content=b'"ok"')))
SUSPEND_V6 = frame(pb.SuspensionMessageV6(waiting_completions=[1]))
GARBAGE_SET_STATE = struct.pack(">HHI", T.SET_STATE_COMMAND, 0, 4) + b"\xff\xff\xff\xff"


@dataclass
class Run:
    attempt: Attempt
    transport: FakeTransport
    task: asyncio.Task[Outcome]
    proposals: list[InvokerEffect] = field(default_factory=list)

    async def stream(self) -> FakeStream:
        opened = self.transport.http1.opened if self.http1 else self.transport.h2.opened
        return await asyncio.wait_for(opened.get(), 5)

    @property
    def http1(self) -> bool:
        return self.attempt.snap.deployment.use_http_11

    async def error(self) -> AttemptError:
        with pytest.raises(AttemptError) as caught:
            await asyncio.wait_for(self.task, 5)
        return caught.value

    async def outcome(self) -> str:
        return (await asyncio.wait_for(self.task, 5)).kind


def start(
    snap: Snapshot | None = None, *, clock: FakeClock | None = None, transport: Any = None, **limits: int
) -> Run:
    transport = transport or FakeTransport()
    proposals: list[InvokerEffect] = []
    attempt = Attempt(
        snap or snapshot(),
        transport,
        proposals.append,
        limits=MessageLimits(**limits) if limits else None,
        clock=clock or FakeClock(),
    )
    return Run(attempt, transport, asyncio.get_running_loop().create_task(attempt.run()), proposals)


async def test_bidi_attempt_replays_and_proposes_what_the_sdk_sends() -> None:
    run = start(snapshot(version=6))
    stream = await run.stream()
    assert stream.request.path == "/base/invoke/Obj/run"
    headers = stream.request.headers
    assert headers["content-type"] == headers["accept"] == "application/vnd.restate.invocation.v6"
    assert headers["x-restate-service-key"] == "k"
    assert stream.request.body == replay_bytes(run.attempt.snap)
    stream.reply(SLEEP + OUTPUT[:5], **{"x-restate-server": "sdk/1"})
    stream.feed(OUTPUT[5:] + END)
    assert await run.outcome() == "end"
    assert stream.ended
    first, second = run.proposals
    assert first.pin == ("dp_1", 6)
    assert [e[0] for e in first.entries] == [T.SLEEP_COMMAND]
    assert first.first_command_index == 1
    assert (second.pin, second.terminal, second.first_command_index) == (None, Ended(), 2)
    assert [e[0] for e in second.entries] == [T.OUTPUT_COMMAND]
    assert first.now == int(FakeClock().time() * 1000)
    assert run.attempt.server_header == "sdk/1"


async def test_request_response_attempt_sends_everything_up_front() -> None:
    run = start(snapshot(use_http_11=True, uri="http://example:8081"))
    exchange = await run.stream()
    assert exchange.request.path == "http://example:8081/invoke/Obj/run"
    exchange.reply(SUSPEND_V6)
    exchange.finish()
    assert await run.outcome() == "suspend"
    assert run.proposals[-1].terminal == Suspended(completions=(1,))


async def test_garbage_payload_fails_the_attempt_after_proposing_what_preceded_it() -> None:
    run = start(snapshot(pinned=True))
    stream = await run.stream()
    stream.reply(SLEEP + GARBAGE_SET_STATE + END)
    error = await run.error()
    assert error.code == "RT0012"
    assert "cannot decode" in error.message
    [effect] = run.proposals
    assert [e[0] for e in effect.entries] == [T.SLEEP_COMMAND]
    assert effect.terminal is None
    assert stream.was_reset


async def test_a_bad_first_frame_proposes_nothing() -> None:
    run = start(snapshot(pinned=True))
    stream = await run.stream()
    stream.reply(GARBAGE_SET_STATE)
    assert (await run.error()).code == "RT0012"
    assert run.proposals == []


@pytest.mark.parametrize("http1", [False, True], ids=["h2c", "http1"])
async def test_oversized_frame_fails_from_its_header_alone(http1: bool) -> None:
    run = start(snapshot(pinned=True, use_http_11=http1))
    stream = await run.stream()
    header = struct.pack(">HHI", T.OUTPUT_COMMAND, 0, 3 * 2**30)
    stream.reply(SLEEP + header + b"\0" * 1000)
    error = await run.error()
    assert error.code == "RT0003"
    assert "3221225472 >= 33554432" in error.message
    assert run.attempt.decoder.buffered == 0
    assert stream.was_reset
    assert [e[0] for e in run.proposals[0].entries] == [T.SLEEP_COMMAND]
    stream.feed(b"\0" * 1000)  # the deployment keeps sending: nothing is kept
    assert run.attempt.decoder.buffered == 0


async def test_configured_size_limit() -> None:
    run = start(snapshot(pinned=True), size_limit=64, size_warning=32)
    stream = await run.stream()
    stream.reply(frame(pb.OutputCommandMessage(value=pb.Value(content=b"x" * 70))))
    assert (await run.error()).code == "RT0003"


async def test_size_warning_is_logged_once_per_message(caplog: pytest.LogCaptureFixture) -> None:
    run = start(snapshot(pinned=True), size_warning=50)
    stream = await run.stream()
    big = frame(pb.SetStateCommandMessage(key=b"k", value=pb.Value(content=b"x" * 60)))
    with caplog.at_level(logging.WARNING, logger="restate_server.invoker.attempt"):
        stream.reply(big[:10])
        stream.feed(big[10:30], big[30:] + big + SLEEP + END)
        assert await run.outcome() == "end"
    warnings = [r for r in caplog.records if "message size warning" in r.getMessage()]
    assert len(warnings) == 2
    assert "SetStateCommand" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("status", "headers", "code", "retry_after"),
    [
        (307, {"location": "http://elsewhere/"}, "RT0006", None),
        (301, {}, "RT0006", None),
        (500, {"retry-after": "7"}, "RT0006", 7.0),
        (502, {}, "RT0010", None),
        (503, {"retry-after": "3"}, "RT0023", 3.0),
        (429, {"retry-after": "soon"}, "RT0023", None),
        (413, {}, "RT0019", None),
        (415, {}, "RT0015", None),
    ],
    ids=["307", "301", "500", "502", "503", "429", "413", "415"],
)
async def test_non_200_status_fails_the_attempt(
    status: int, headers: dict[str, str], code: str, retry_after: float | None
) -> None:
    run = start()
    stream = await run.stream()
    stream.reply(OUTPUT + END, status=status, **headers)
    error = await run.error()
    assert (error.code, error.retry_after) == (code, retry_after)
    if code == "RT0006":
        assert f"unexpected status code {status}" in error.message
    assert stream.was_reset
    assert run.proposals == []


async def test_wrong_content_type_is_a_protocol_violation() -> None:
    run = start(snapshot(version=7))
    stream = await run.stream()
    stream.reply(OUTPUT + END, version=6)
    assert (await run.error()).code == "RT0012"


async def test_unknown_control_type_in_a_header() -> None:
    run = start()
    stream = await run.stream()
    stream.reply(struct.pack(">HHI", 0x0099, 0, 0))
    error = await run.error()
    assert (error.code, error.message) == ("RT0012", "unknown message code 0x99")


@pytest.mark.parametrize("trailer", [OUTPUT, b"\x04\x01"], ids=["frame", "partial-frame"])
async def test_bytes_after_the_end_message_are_a_protocol_violation(trailer: bytes) -> None:
    run = start(snapshot(pinned=True))
    stream = await run.stream()
    stream.reply(SLEEP + END + trailer)
    error = await run.error()
    assert error.code == "RT0012"
    assert "no other bytes" in error.message
    assert [p.terminal for p in run.proposals] == [None]


async def test_end_followed_by_a_bad_header_is_a_protocol_violation() -> None:
    run = start(snapshot(pinned=True))
    stream = await run.stream()
    stream.reply(END + struct.pack(">HHI", 0x0099, 0, 0))
    assert "no other bytes" in (await run.error()).message
    assert run.proposals == []


async def test_sdk_error_message_fails_with_its_hint() -> None:
    run = start(snapshot(pinned=True))
    stream = await run.stream()
    stream.reply(SLEEP + frame(pb.ErrorMessage(code=500, message="boom", next_retry_delay=2500)))
    error = await run.error()
    assert (error.code, error.retry_after) == ("RT0007", 2.5)
    assert len(run.proposals[0].entries) == 1


async def test_stream_closed_without_end() -> None:
    run = start(snapshot(pinned=True))
    stream = await run.stream()
    stream.reply(SLEEP)
    stream.finish()
    assert (await run.error()).code == "RT0006"


async def test_transport_error_is_a_network_failure() -> None:
    run = start(snapshot(use_http_11=True))
    exchange = await run.stream()
    exchange.fail(ConnectionResetError("reset by peer"))
    error = await run.error()
    assert (error.code, error.message) == ("RT0010", "reset by peer")


async def test_unreachable_deployment() -> None:
    transport = FakeTransport()
    transport.h2.refuse = ConnectionRefusedError("refused")
    run = start(transport=transport)
    error = await run.error()
    assert error.code == "RT0010"
    assert "cannot reach http://127.0.0.1:9080/base" in error.message


async def test_inactivity_closes_input_then_the_sdk_suspends() -> None:
    clock = FakeClock()
    run = start(snapshot(inactivity=60, abort=30, pinned=True), clock=clock)
    stream = await run.stream()
    stream.reply()
    clock.advance(40)
    stream.feed(SLEEP)  # activity: the inactivity timer starts over
    clock.advance(59)
    assert not stream.ended
    clock.advance(1)
    assert stream.ended
    run.attempt.push(5, T.SLEEP_COMPLETION, b"", None)  # input closed: nothing more is sent
    assert stream.sent == []
    stream.feed(SUSPEND_V6)
    assert await run.outcome() == "suspend"
    assert clock.pending == []


async def test_abort_timeout_after_inactivity_fails_with_rt0001() -> None:
    clock = FakeClock()
    run = start(snapshot(inactivity=10, abort=5, pinned=True), clock=clock)
    stream = await run.stream()
    stream.reply()
    clock.advance(10)
    assert stream.ended
    clock.advance(4.9)
    assert not run.task.done()
    clock.advance(0.1)
    error = await run.error()
    assert error.code == "RT0001"
    assert stream.was_reset


async def test_notifications_before_open_follow_the_replay_and_acks_follow_the_version() -> None:
    transport = FakeTransport()
    run = start(snapshot(version=7), transport=transport)
    run.attempt.push(0, T.SLEEP_COMPLETION, b"replayed", None)  # part of the replay: dropped
    run.attempt.push(1, T.SLEEP_COMPLETION, b"\x08\x01", None)
    stream = await run.stream()
    assert stream.sent == [codec.encode_frame(T.SLEEP_COMPLETION, b"\x08\x01")]
    run.attempt.push(2, T.RUN_COMPLETION, b"full", 3)
    ack = pb.ProposeRunCompletionAckMessage(completion_id=3).SerializeToString()
    assert stream.sent[-1] == codec.encode_frame(T.PROPOSE_RUN_COMPLETION_ACK, ack)
    run.attempt.abort()
    error = await run.error()
    assert (error.code, error.message) == ("RT0006", "attempt aborted")
    assert stream.was_reset


async def test_v6_gets_the_full_run_completion_and_http1_buffers_into_the_body() -> None:
    run = start(snapshot(version=6, use_http_11=True))
    run.attempt.push(1, T.RUN_COMPLETION, b"full", 3)
    exchange = await run.stream()
    assert exchange.request.body.endswith(codec.encode_frame(T.RUN_COMPLETION, b"full"))
    exchange.reply(END)
    exchange.finish()
    assert await run.outcome() == "end"


class Signer:
    def headers(self, path: str, key: str | None) -> dict[str, str]:
        return {"x-signed": f"{path}|{key}"}


async def test_request_headers_carry_identity_and_additional_headers() -> None:
    transport = FakeTransport(signer=Signer(), additional_headers={"x-cluster": "c"})
    snap = snapshot(headers={"authorization": "t"}, uri="http://h:1/p/?q=1")
    snap.key = "a b/c"
    run = start(snap, transport=transport)
    stream = await run.stream()
    headers = stream.request.headers
    assert stream.request.path == "/p/invoke/Obj/run?q=1"
    assert headers["x-signed"] == "/invoke/Obj/run|a b/c"
    assert (headers["x-cluster"], headers["authorization"]) == ("c", "t")
    assert headers["x-restate-service-key"] == "a%20b%2Fc"
    run.attempt.abort()
    await run.error()


@pytest.mark.parametrize("version", [5, 6, 7], ids=lambda v: f"v{v}")
def test_start_message_follows_the_version(version: int) -> None:
    snap = snapshot(version=version)
    snap.idempotency_key = "idem"
    snap.retry_count = 2
    start_frame, input_frame = codec.Decoder().feed(replay_bytes(snap))
    msg = codec.decode_frame(start_frame)
    assert isinstance(msg, pb.StartMessage)
    assert (msg.id, msg.key, msg.known_entries) == (INVOCATION_ID, "k", 1)
    assert msg.retry_count_since_last_stored_entry == 2
    assert [(e.key, e.value) for e in msg.state_map] == [(b"a", b"1")]
    assert (msg.random_seed != 0) == (version >= 6)
    assert msg.HasField("idempotency_key") == (version >= 7)
    assert input_frame.type == T.INPUT_COMMAND


def test_lazy_state_is_announced_as_partial() -> None:
    snap = snapshot()
    snap.state = None
    snap.journal.append(JournalEntry(type=T.SLEEP_COMMAND, flags=0, payload=b""))
    msg = codec.decode_frame(codec.Decoder().feed(replay_bytes(snap))[0])
    assert isinstance(msg, pb.StartMessage)
    assert (msg.partial_state, len(msg.state_map), msg.known_entries) == (True, 0, 2)
