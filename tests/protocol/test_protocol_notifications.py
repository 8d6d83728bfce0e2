"""Notification builders (byte-exact against verified wire examples) and id scanning."""

from __future__ import annotations

import pytest
from restate_server.protocol import codec, notifications as nt, protocol_pb2 as pb
from restate_server.protocol.codec import Frame, ProtocolError
from restate_server.protocol.messages import MessageType as T


def test_sleep_completion_bytes() -> None:
    assert nt.completion_notification(T.SLEEP_COMPLETION, 1, void=True) == bytes.fromhex("08012200")
    # A sleep completion is void even if the caller forgets to say so.
    assert nt.completion_notification(T.SLEEP_COMPLETION, 1) == bytes.fromhex("08012200")


def test_signal_bytes() -> None:
    assert nt.signal_notification(nt.CANCEL_SIGNAL_IDX, void=True) == bytes.fromhex("10012200")
    value = pb.Value(content=b'"x"').SerializeToString()
    assert nt.signal_notification(17, value=b'"x"') == b"\x10\x11\x2a" + bytes([len(value)]) + value
    named = pb.SignalNotificationMessage.FromString(nt.signal_notification("sig", failure=(500, "no")))
    assert named.name == "sig"
    assert named.failure == pb.Failure(code=500, message="no")


@pytest.mark.parametrize(
    ("type_code", "kwargs", "field"),
    [
        (T.GET_LAZY_STATE_COMPLETION, {"value": b"v"}, "value"),
        (T.GET_LAZY_STATE_COMPLETION, {"void": True}, "void"),
        (T.GET_LAZY_STATE_KEYS_COMPLETION, {"state_keys": [b"a", b"b"]}, "state_keys"),
        (T.CALL_INVOCATION_ID_COMPLETION, {"invocation_id": "inv_1x"}, "invocation_id"),
        (T.CALL_COMPLETION, {"failure": pb.Failure(code=409, message="c")}, "failure"),
        (T.RUN_COMPLETION, {"value": b""}, "value"),
        (T.GET_INVOCATION_OUTPUT_COMPLETION, {"void": True}, "void"),
    ],
    ids=lambda v: v.name if isinstance(v, T) else str(v),
)
def test_completion_round_trip(type_code: int, kwargs: dict[str, object], field: str) -> None:
    payload = nt.completion_notification(type_code, 7, **kwargs)  # type: ignore[arg-type]
    msg = codec.decode_frame(Frame(type_code, 0, payload))
    assert msg.completion_id == 7  # type: ignore[attr-defined]
    if field == "invocation_id":  # a plain string field, no presence
        assert msg.invocation_id == kwargs["invocation_id"]  # type: ignore[attr-defined]
    else:
        assert msg.HasField(field)


def test_completion_rejects_results_the_type_lacks() -> None:
    with pytest.raises(ValueError, match="value"):
        nt.completion_notification(T.SLEEP_COMPLETION, 1, value=b"x")
    with pytest.raises(ValueError, match="at most one"):
        nt.completion_notification(T.CALL_COMPLETION, 1, value=b"x", failure=(1, "y"))
    with pytest.raises(ValueError, match="not a completion"):
        nt.completion_notification(T.SIGNAL_NOTIFICATION, 1, void=True)


def _frame(msg: pb.Message) -> Frame:  # type: ignore[name-defined]
    (frame,) = codec.Decoder().feed(codec.encode_message(msg))
    return frame


def test_command_completion_id() -> None:
    call = pb.CallCommandMessage(
        service_name="S",
        handler_name="h",
        parameter=b"p" * 1000,
        headers=[pb.Header(key="k", value="v")],
        invocation_id_notification_idx=5,
        result_completion_id=6,
    )
    assert nt.command_completion_id(_frame(call)) == 6
    assert nt.invocation_id_notification_idx(_frame(call)) == 5
    one_way = pb.OneWayCallCommandMessage(service_name="S", invoke_time=123, invocation_id_notification_idx=9)
    assert nt.command_completion_id(_frame(one_way)) is None
    assert nt.invocation_id_notification_idx(_frame(one_way)) == 9
    assert (
        nt.command_completion_id(_frame(pb.SleepCommandMessage(wake_up_time=2**63, result_completion_id=1)))
        == 1
    )
    assert nt.command_completion_id(_frame(pb.SetStateCommandMessage(key=b"k"))) is None
    assert nt.command_completion_id(_frame(pb.RunCommandMessage(name="r"))) == 0  # proto3 default


def test_completion_id_of_every_completable_command_for_every_completable_command() -> None:
    for t in nt.COMMANDS_WITH_RESULT:
        from restate_server.protocol.messages import MESSAGE_CLASSES

        msg = MESSAGE_CLASSES[t](result_completion_id=300, name="n")
        assert nt.command_completion_id(_frame(msg)) == 300, t


def test_truncated_command_payload_raises() -> None:
    raw = pb.CallCommandMessage(service_name="Svc", result_completion_id=3).SerializeToString()
    with pytest.raises(ProtocolError):
        nt.command_completion_id(Frame(T.CALL_COMMAND, 0, raw[:3]))
