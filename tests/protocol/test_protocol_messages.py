"""The registry: codes, families, field numbers that must match upstream, suspension layouts."""

from __future__ import annotations

import pytest
from restate_server.protocol import messages, protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T


def test_every_code_has_a_class_and_the_class_name_matches() -> None:
    assert set(messages.MESSAGE_CLASSES) == set(T)
    for code, cls in messages.MESSAGE_CLASSES.items():
        stem = cls.__name__.removesuffix("Message")
        assert stem.replace("NotificationMessage", "")  # non-empty
        if messages.is_command(code):
            assert stem.endswith("Command"), cls
        elif messages.is_notification(code):
            assert stem.endswith("Notification"), cls


def test_families_are_disjoint_and_follow_ranges() -> None:
    for t in T:
        flags = [
            messages.is_control(t),
            messages.is_command(t),
            messages.is_notification(t),
            messages.is_custom(t),
        ]
        assert sum(flags) == 1, t
    assert messages.is_command(0x0400)
    assert messages.is_notification(0xFBFF)
    assert not messages.is_known(0x040F)
    assert messages.is_custom(0x040F)  # unknown with 0xFC00 bits: opaque custom entry upstream
    assert messages.is_custom(0xFC00)
    assert not messages.is_custom(0x0008)


def test_ack_is_allowed_on_commands_and_run_proposals_only() -> None:
    assert messages.allows_ack(T.SET_STATE_COMMAND)
    assert messages.allows_ack(T.PROPOSE_RUN_COMPLETION)
    assert not messages.allows_ack(T.SLEEP_COMPLETION)
    assert not messages.allows_ack(T.END)


# (message, field, number): the numbers the SDKs rely on, checked against upstream's proto.
FIELD_NUMBERS = [
    ("StartMessage", "random_seed", 9),
    ("StartMessage", "scope", 10),
    ("StartMessage", "limit_key", 11),
    ("StartMessage", "idempotency_key", 12),
    ("SuspensionMessage", "awaiting_on", 4),
    ("SuspensionMessageV6", "waiting_named_signals", 3),
    ("ErrorMessage", "next_retry_delay", 8),
    ("ErrorMessage", "behavior", 9),
    ("ProposeRunCompletionMessage", "value", 14),
    ("ProposeRunCompletionMessage", "failure", 15),
    ("InputCommandMessage", "value", 14),
    ("OutputCommandMessage", "name", 12),
    ("GetEagerStateCommandMessage", "void", 13),
    ("CallCommandMessage", "invocation_id_notification_idx", 10),
    ("CallCommandMessage", "result_completion_id", 11),
    ("OneWayCallCommandMessage", "invoke_time", 4),
    ("OneWayCallCommandMessage", "limit_key", 9),
    ("SendSignalCommandMessage", "entry_name", 12),
    ("CallInvocationIdCompletionNotificationMessage", "invocation_id", 16),
    ("GetLazyStateKeysCompletionNotificationMessage", "state_keys", 17),
    ("SignalNotificationMessage", "idx", 2),
    ("SignalNotificationMessage", "name", 3),
    ("Failure", "metadata", 3),
    ("IdempotentRequestTarget", "scope", 5),
    ("AttachInvocationCommandMessage", "workflow_target", 4),
]


@pytest.mark.parametrize(("message", "field", "number"), FIELD_NUMBERS, ids=lambda v: str(v))
def test_field_numbers(message: str, field: str, number: int) -> None:
    assert getattr(pb, message).DESCRIPTOR.fields_by_name[field].number == number


def test_package_name() -> None:
    assert pb.StartMessage.DESCRIPTOR.full_name == "dev.restate.service.protocol.StartMessage"


def test_decode_suspension_v6() -> None:
    raw = pb.SuspensionMessageV6(waiting_completions=[1, 3], waiting_signals=[1], waiting_named_signals=["x"])
    for version in (5, 6):
        assert messages.decode_suspension(raw.SerializeToString(), version) == ([1, 3], [1], ["x"], None)


def test_decode_suspension_v7_flattens_nested_futures() -> None:
    fut = pb.Future(
        waiting_completions=[1],
        combinator_type=pb.ALL_COMPLETED,
        nested_futures=[
            pb.Future(waiting_signals=[17], waiting_named_signals=["n"]),
            pb.Future(waiting_completions=[4], nested_futures=[pb.Future(waiting_completions=[5])]),
        ],
    )
    raw = pb.SuspensionMessage(awaiting_on=fut).SerializeToString()
    completions, signals, names, future = messages.decode_suspension(raw, 7)
    assert sorted(completions) == [1, 4, 5]
    assert signals == [17]
    assert names == ["n"]
    assert future == fut


def test_decode_suspension_v7_empty() -> None:
    assert messages.decode_suspension(b"", 7) == ([], [], [], pb.Future())


def test_decode_suspension_garbage() -> None:
    with pytest.raises(messages.SuspensionDecodeError):
        messages.decode_suspension(b"\x0a\xff", 6)
