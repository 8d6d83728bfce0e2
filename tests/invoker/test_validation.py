"""Frame validation: what real SDKs send passes; garbage, missing fields and wrong targets do not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from google.protobuf.message import Message
from restate_server.ids import InvocationId, awakeable_id
from restate_server.invoker import validation
from restate_server.invoker.errors import AttemptError, SdkError
from restate_server.invoker.validation import Failed, Kind, Rules, Suspended
from restate_server.protocol import codec, protocol_pb2 as pb
from restate_server.protocol.codec import Frame
from restate_server.protocol.messages import MessageType as T
from restate_server.schema.model import HandlerType, ServiceType

PROTOCOL_DATA = Path(__file__).resolve().parent.parent / "protocol"
sys.path.insert(0, str(PROTOCOL_DATA))

ANY = Rules(protocol_version=7)
V6 = Rules(protocol_version=6)
OTHER_ID = str(InvocationId.for_workflow("Other", "x"))


def _frame(msg: Message, type_: int | None = None) -> Frame:
    return Frame(type_ if type_ is not None else codec.message_type_of(msg), 0, msg.SerializeToString())


def _violation(frame: Frame, rules: Rules = ANY) -> AttemptError:
    with pytest.raises(AttemptError) as caught:
        validation.check(frame, rules, 3)
    return caught.value


@pytest.mark.parametrize("version", [5, 6, 7], ids=lambda v: f"v{v}")
def test_real_sdk_frames_all_pass(version: int) -> None:
    """Every command the real SDK core writes for a workflow run handler is accepted as is."""
    sdk_driver = pytest.importorskip("sdk_driver")
    vm = sdk_driver.new_vm(version, key="k")
    vm.sys_input()
    vm.sys_set_state("s", b"1")
    vm.sys_get_state("s")
    vm.sys_get_state_keys()
    vm.sys_clear_state("s")
    vm.sys_clear_all_state()
    vm.sys_get_promise("p")
    vm.sys_peek_promise("p")
    vm.sys_complete_promise_success("q", b"v")
    vm.sys_resolve_awakeable(awakeable_id(InvocationId.for_workflow("Svc", "k"), 17), b"v")
    vm.sys_cancel(OTHER_ID)
    vm.sys_resolve_signal(OTHER_ID, "sig", b"v")
    vm.sys_send("Greeter", "greet", b"{}", None, 10)
    vm.sys_sleep(1000)
    vm.sys_run("side")
    vm.sys_write_output_success(b'"done"')
    vm.sys_end()
    frames = codec.Decoder().feed(vm.take_output())
    rules = Rules.for_target(version, ServiceType.WORKFLOW, HandlerType.WORKFLOW)
    kinds = [validation.check(f, rules, i) for i, f in enumerate(frames)]
    assert len(frames) >= 15
    assert kinds[-1] is Kind.END
    assert all(k is Kind.COMMAND for k in kinds[:-1])


@pytest.mark.parametrize("version", [5, 6, 7], ids=lambda v: f"v{v}")
def test_captured_sdk_streams_pass(version: int) -> None:
    raw = (PROTOCOL_DATA / "data" / f"sleep_call_run_suspend_v{version}.bin").read_bytes()
    kinds = [validation.check(f, Rules(protocol_version=version), 0) for f in codec.Decoder().feed(raw)]
    assert kinds[:4] == [Kind.COMMAND, Kind.COMMAND, Kind.COMMAND, Kind.RUN_PROPOSAL]
    suspended = kinds[4]
    assert isinstance(suspended, Suspended)
    assert 1 in suspended.completions


def test_captured_v7_error_and_awaiting_on() -> None:
    data = PROTOCOL_DATA / "data"
    awaiting = codec.Decoder().feed((data / "awaiting_on_v7.bin").read_bytes())
    assert Kind.AWAITING_ON in [validation.check(f, ANY, 0) for f in awaiting]
    [*_, error_frame] = codec.Decoder().feed((data / "error_v7.bin").read_bytes())
    failed = validation.check(error_frame, ANY, 0)
    assert isinstance(failed, Failed)
    assert isinstance(failed.error, SdkError)


def test_garbage_payload_is_a_protocol_violation() -> None:
    error = _violation(Frame(T.SET_STATE_COMMAND, 0, b"\xff\xff\xff\xff"))
    assert error.code == "RT0012"
    assert "SetStateCommand" in error.message


@pytest.mark.parametrize(
    "message",
    [
        pb.SetStateCommandMessage(key=b"k"),
        pb.OutputCommandMessage(),
        pb.InputCommandMessage(),
        pb.GetEagerStateCommandMessage(key=b"k"),
        pb.GetEagerStateKeysCommandMessage(),
        pb.CompletePromiseCommandMessage(key="p"),
        pb.SendSignalCommandMessage(target_invocation_id=OTHER_ID, idx=1),
        pb.SendSignalCommandMessage(target_invocation_id=OTHER_ID, void=pb.Void()),
        pb.AttachInvocationCommandMessage(),
        pb.GetInvocationOutputCommandMessage(),
        pb.CompleteAwakeableCommandMessage(awakeable_id=awakeable_id(bytes(24), 17)),
        pb.ProposeRunCompletionMessage(result_completion_id=1),
    ],
    ids=lambda m: type(m).__name__,
)
def test_missing_required_field_is_a_protocol_violation(message: Message) -> None:
    error = _violation(_frame(message))
    assert error.code == "RT0012"
    assert "missing" in error.message


@pytest.mark.parametrize(
    "message",
    [
        pb.SetStateCommandMessage(key=b"\xff", value=pb.Value()),
        pb.GetLazyStateCommandMessage(key=b"\xc3"),
        pb.ClearStateCommandMessage(key=b"\xff"),
        pb.GetEagerStateCommandMessage(key=b"\xff", void=pb.Void()),
        pb.GetEagerStateKeysCommandMessage(value=pb.StateKeys(keys=[b"ok", b"\xff"])),
        pb.SendSignalCommandMessage(target_invocation_id="inv_nope", idx=1, void=pb.Void()),
        pb.CompleteAwakeableCommandMessage(awakeable_id="sign_1nope", value=pb.Value()),
    ],
    ids=lambda m: type(m).__name__,
)
def test_bad_keys_and_ids_are_protocol_violations(message: Message) -> None:
    assert _violation(_frame(message)).code == "RT0012"


def test_bad_invocation_id_in_attach_is_a_failed_precondition() -> None:
    for cls in (pb.AttachInvocationCommandMessage, pb.GetInvocationOutputCommandMessage):
        error = _violation(_frame(cls(invocation_id="inv_nope")))
        assert error.code == "RT0017"
        assert validation.check(_frame(cls(invocation_id=OTHER_ID)), ANY, 0) is Kind.COMMAND
        target = cls(workflow_target=pb.WorkflowTarget(workflow_name="W", workflow_key="k"))
        assert validation.check(_frame(target), ANY, 0) is Kind.COMMAND


@pytest.mark.parametrize(
    ("service", "handler", "message", "allowed"),
    [
        (ServiceType.SERVICE, None, pb.GetLazyStateCommandMessage(key=b"k"), False),
        (ServiceType.SERVICE, None, pb.GetEagerStateKeysCommandMessage(value=pb.StateKeys()), False),
        (ServiceType.VIRTUAL_OBJECT, HandlerType.SHARED, pb.GetLazyStateKeysCommandMessage(), True),
        (ServiceType.VIRTUAL_OBJECT, HandlerType.SHARED, pb.ClearAllStateCommandMessage(), False),
        (ServiceType.VIRTUAL_OBJECT, None, pb.SetStateCommandMessage(key=b"k", value=pb.Value()), True),
        (ServiceType.WORKFLOW, HandlerType.SHARED, pb.ClearStateCommandMessage(key=b"k"), False),
        (ServiceType.VIRTUAL_OBJECT, HandlerType.EXCLUSIVE, pb.GetPromiseCommandMessage(key="p"), False),
        (ServiceType.WORKFLOW, HandlerType.SHARED, pb.PeekPromiseCommandMessage(key="p"), True),
    ],
    ids=[
        "service-reads",
        "service-reads-keys",
        "shared-reads",
        "shared-writes",
        "object-default-handler-writes",
        "workflow-shared-writes",
        "object-promise",
        "workflow-shared-promise",
    ],
)
def test_target_rules(
    service: ServiceType, handler: HandlerType | None, message: Message, allowed: bool
) -> None:
    rules = Rules.for_target(6, service, handler)
    frame = _frame(message)
    if allowed:
        assert validation.check(frame, rules, 3) is Kind.COMMAND
    else:
        error = _violation(frame, rules)
        assert error.code == "RT0017"
        assert "command index 3" in error.message


@pytest.mark.parametrize(
    ("type_", "rules"),
    [
        (T.START, ANY),
        (T.COMMAND_ACK, ANY),
        (T.PROPOSE_RUN_COMPLETION_ACK, ANY),
        (T.SLEEP_COMPLETION, ANY),
        (T.SIGNAL_NOTIFICATION, ANY),
        (0x0500, ANY),
        (0xFC01, ANY),
        (T.AWAITING_ON, V6),
    ],
    ids=["start", "ack", "run-ack", "notification", "signal", "unknown-command", "custom", "awaiting-v6"],
)
def test_messages_the_sdk_must_not_send(type_: int, rules: Rules) -> None:
    error = _violation(Frame(type_, 0, b""), rules)
    assert error.code == "RT0012"
    assert "unexpected message" in error.message


def test_suspension_layouts_and_emptiness() -> None:
    v6 = Frame(
        T.SUSPENSION,
        0,
        pb.SuspensionMessageV6(waiting_completions=[2], waiting_named_signals=["n"]).SerializeToString(),
    )
    assert validation.check(v6, V6, 0) == Suspended(completions=[2], signals=[], names=["n"])
    nested = pb.Future(nested_futures=[pb.Future(waiting_signals=[17]), pb.Future(waiting_completions=[4])])
    v7 = Frame(T.SUSPENSION, 0, pb.SuspensionMessage(awaiting_on=nested).SerializeToString())
    assert validation.check(v7, ANY, 0) == Suspended(completions=[4], signals=[17], names=[])
    assert "empty" in _violation(Frame(T.SUSPENSION, 0, b""), V6).message
    assert "empty" in _violation(Frame(T.SUSPENSION, 0, b""), ANY).message
    assert "empty" in _violation(_frame(pb.AwaitingOnMessage())).message


def test_error_message_carries_hint_and_behaviour() -> None:
    msg = pb.ErrorMessage(code=570, message="mismatch", next_retry_delay=1500, behavior=pb.PAUSE)
    failed = validation.check(_frame(msg), ANY, 0)
    assert isinstance(failed, Failed)
    assert (failed.error.code, failed.error.retry_after, failed.error.behavior) == ("RT0016", 1.5, 1)
    plain = validation.check(_frame(pb.ErrorMessage(code=500, message="boom")), ANY, 0)
    assert isinstance(plain, Failed)
    assert (plain.error.code, plain.error.retry_after) == ("RT0007", None)


def test_end_with_garbage_payload_is_rejected() -> None:
    assert validation.check(Frame(T.END, 0, b""), ANY, 0) is Kind.END
    assert _violation(Frame(T.END, 0, b"\x07")).code == "RT0012"


@pytest.mark.parametrize(
    "message",
    [
        pb.CallCommandMessage(service_name="Nowhere", handler_name="go"),
        pb.OneWayCallCommandMessage(service_name="Greeter", handler_name="nope"),
    ],
    ids=["unknown-service", "unknown-handler"],
)
def test_a_call_to_an_unregistered_handler_fails_the_attempt_with_rt0018(message: Message) -> None:
    registered = {("Greeter", "greet"): object()}
    rules = Rules(protocol_version=6, callees=lambda s, h: registered.get((s, h)))
    frame = Frame(
        T.CALL_COMMAND if isinstance(message, pb.CallCommandMessage) else T.ONE_WAY_CALL_COMMAND,
        0,
        message.SerializeToString(),
    )
    with pytest.raises(AttemptError) as caught:
        validation.check(frame, rules, 3)
    assert caught.value.code == "RT0018"
    assert caught.value.message.endswith(
        f"(command index 3) because of a failed precondition: "
        f"the service handler {message.service_name}/{message.handler_name} was not found"
    )
    known = pb.CallCommandMessage(service_name="Greeter", handler_name="greet")
    assert validation.check(Frame(T.CALL_COMMAND, 0, known.SerializeToString()), rules, 3) == Kind.COMMAND
