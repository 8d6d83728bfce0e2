"""Framing: round trips, arbitrary chunking, truncated and garbage input."""

from __future__ import annotations

import random
import struct

import pytest
from restate_server.protocol import codec, messages, protocol_pb2 as pb
from restate_server.protocol.codec import Decoder, Frame, ProtocolError

SAMPLE_MESSAGES = [
    pb.StartMessage(
        id=bytes(range(24)),
        debug_id="inv_1",
        known_entries=3,
        state_map=[pb.StartMessage.StateEntry(key=b"k", value=b"v")],
        partial_state=True,
        key="obj",
        retry_count_since_last_stored_entry=2,
        duration_since_last_stored_entry=1500,
        random_seed=2**64 - 1,
        scope="s",
        limit_key="l",
        idempotency_key="i",
    ),
    pb.InputCommandMessage(
        headers=[pb.Header(key="a", value="b")], value=pb.Value(content=b"x" * 300), name="in"
    ),
    pb.OutputCommandMessage(failure=pb.Failure(code=409, message="cancelled")),
    pb.SleepCommandMessage(wake_up_time=1_700_000_000_000, result_completion_id=1),
    pb.CallCommandMessage(
        service_name="S",
        handler_name="h",
        parameter=b"{}",
        key="k",
        idempotency_key="i",
        invocation_id_notification_idx=1,
        result_completion_id=2,
    ),
    pb.SignalNotificationMessage(idx=17, value=pb.Value(content=b"v")),
    pb.SuspensionMessage(awaiting_on=pb.Future(waiting_completions=[1], waiting_signals=[1])),
    pb.EndMessage(),
    pb.ErrorMessage(code=500, message="boom", next_retry_delay=10, behavior=pb.PAUSE),
]


def _stream() -> bytes:
    return b"".join(
        codec.encode_message(m, requested_ack=isinstance(m, pb.SleepCommandMessage)) for m in SAMPLE_MESSAGES
    )


def test_header_is_type_flags_length_big_endian() -> None:
    raw = codec.encode_frame(0x0401, b"abc", requested_ack=True)
    assert raw == b"\x04\x01\x80\x00\x00\x00\x00\x03abc"
    assert struct.unpack(">HHI", raw[:8]) == (0x0401, 0x8000, 3)


@pytest.mark.parametrize("msg", SAMPLE_MESSAGES, ids=lambda m: type(m).__name__)
def test_encode_decode_round_trip(msg: object) -> None:
    frames = Decoder().feed(codec.encode_message(msg))  # type: ignore[arg-type]
    assert len(frames) == 1
    assert frames[0].type == codec.message_type_of(msg)  # type: ignore[arg-type]
    assert codec.decode_frame(frames[0]) == msg


@pytest.mark.parametrize("code", sorted(messages.MESSAGE_CLASSES), ids=hex)
def test_every_class_round_trips_empty(code: int) -> None:
    msg = messages.MESSAGE_CLASSES[code]()
    raw = codec.encode_message(msg)
    (frame,) = Decoder().feed(raw)
    assert frame == Frame(code, 0, b"")
    assert codec.decode_frame(frame) == msg


def test_requested_ack_flag() -> None:
    frames = Decoder().feed(_stream())
    assert [f.requested_ack for f in frames] == [
        isinstance(m, pb.SleepCommandMessage) for m in SAMPLE_MESSAGES
    ]


def test_every_split_point_yields_the_same_frames() -> None:
    data = _stream()
    expected = Decoder().feed(data)
    assert len(expected) == len(SAMPLE_MESSAGES)
    for cut in range(len(data) + 1):
        dec = Decoder()
        got = dec.feed(data[:cut]) + dec.feed(data[cut:])
        assert got == expected, cut
        dec.close()


@pytest.mark.parametrize("seed", range(20), ids=lambda s: f"seed{s}")
def test_random_chunking_yields_the_same_frames(seed: int) -> None:
    rng = random.Random(seed)
    data = _stream() * 3
    expected = Decoder().feed(data)
    dec = Decoder()
    got: list[Frame] = []
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 2, 7, 8, 9, 64, 500])
        got += dec.feed(data[pos : pos + step])
        pos += step
    assert got == expected
    assert dec.buffered == 0


def test_byte_by_byte_feeding() -> None:
    data = _stream()
    dec = Decoder()
    got = [f for i in range(len(data)) for f in dec.feed(data[i : i + 1])]
    assert [codec.decode_frame(f) for f in got] == SAMPLE_MESSAGES


def test_feed_accepts_bytearray_and_memoryview() -> None:
    data = _stream()
    assert Decoder().feed(bytearray(data)) == Decoder().feed(data)
    assert Decoder().feed(memoryview(data)) == Decoder().feed(data)  # type: ignore[arg-type]


def test_empty_feed_is_harmless() -> None:
    dec = Decoder()
    assert dec.feed(b"") == []
    dec.close()


@pytest.mark.parametrize("cut", [1, 7, 8, 9, 20], ids=lambda c: f"cut{c}")
def test_close_with_partial_frame_raises(cut: int) -> None:
    data = codec.encode_message(pb.OutputCommandMessage(value=pb.Value(content=b"y" * 30)))
    dec = Decoder()
    assert dec.feed(data[:cut]) == []
    with pytest.raises(ProtocolError) as info:
        dec.close()
    assert info.value.code == 571


def test_unknown_control_type_is_rejected() -> None:
    with pytest.raises(ProtocolError):
        Decoder().feed(codec.encode_frame(0x0008, b""))


def test_custom_entry_types_pass_through_framing() -> None:
    (frame,) = Decoder().feed(codec.encode_frame(0xFC01, b"opaque", requested_ack=True))
    assert messages.is_custom(frame.type)
    assert frame.payload == b"opaque"
    with pytest.raises(ProtocolError):
        codec.decode_frame(frame)


def test_garbage_payload_is_a_protocol_error() -> None:
    frame = Frame(messages.MessageType.SLEEP_COMMAND, 0, b"\xff\xff\xff")
    with pytest.raises(ProtocolError):
        codec.decode_frame(frame)


def test_size_limit() -> None:
    dec = Decoder(max_message_size=16)
    assert len(dec.feed(codec.encode_frame(0x0401, b"a" * 15))) == 1
    with pytest.raises(codec.MessageTooLargeError):
        # Rejected from the header alone, before the payload arrives.
        dec.feed(codec.encode_frame(0x0401, b"a" * 16)[:8])


def test_suspension_layout_follows_version() -> None:
    v6 = pb.SuspensionMessageV6(waiting_completions=[1, 2], waiting_signals=[1])
    frame = Frame(messages.MessageType.SUSPENSION, 0, v6.SerializeToString())
    assert codec.decode_frame(frame, version=6) == v6
    assert codec.encode_message(v6)[:2] == b"\x00\x01"


def test_message_type_of_rejects_foreign_messages() -> None:
    with pytest.raises(TypeError):
        codec.message_type_of(pb.Value())


def test_buffer_does_not_grow_with_consumed_frames() -> None:
    one = codec.encode_message(pb.EndMessage()) + codec.encode_frame(0x0401, b"z" * 100)
    dec = Decoder()
    for _ in range(1000):
        assert len(dec.feed(one[:50])) == 1
        assert len(dec.feed(one[50:])) == 1
    assert dec.buffered == 0


@pytest.mark.parametrize("split", [0, 3, 7], ids=["whole", "header-split-3", "header-split-7"])
def test_size_limit_rejects_from_the_header_alone(split: int) -> None:
    before = codec.encode_message(pb.EndMessage())
    header = struct.pack(">HHI", messages.MessageType.OUTPUT_COMMAND, 0, 3 * 2**30)
    dec = Decoder(max_message_size=1024)
    data = before + header
    decoded = dec.feed(data[: len(before) + split]) if split else []
    with pytest.raises(codec.MessageTooLargeError) as caught:
        dec.feed(data[len(before) + split :] if split else data)
    assert (caught.value.error_code, caught.value.code) == ("RT0003", 571)
    assert str(caught.value) == "hit message size limit: 3221225472 >= 1024"
    assert [f.type for f in decoded + caught.value.decoded] == [messages.MessageType.END]
    assert dec.buffered == 0


def test_frames_before_an_unknown_control_type_ride_on_the_error() -> None:
    good = codec.encode_message(pb.EndMessage())
    with pytest.raises(ProtocolError) as caught:
        Decoder().feed(good + struct.pack(">HHI", 0x00FF, 0, 0))
    assert caught.value.error_code == "RT0012"
    assert [f.type for f in caught.value.decoded] == [messages.MessageType.END]


def test_frames_below_the_limit_pass() -> None:
    frame = codec.encode_message(pb.OutputCommandMessage(value=pb.Value(content=b"x" * 100)))
    assert len(Decoder(max_message_size=len(frame)).feed(frame)) == 1
