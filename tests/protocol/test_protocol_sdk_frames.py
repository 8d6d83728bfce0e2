"""Bytes from the real SDK core: captured blobs decode as expected, and the live VM agrees.

The reverse direction matters as much: notifications built by ``notifications`` must be accepted
by the real core and resolve the handles it is waiting on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sdk_driver
from restate_server.ids import awakeable_id
from restate_server.protocol import codec, notifications as nt, protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T

vm_mod = pytest.importorskip("restate.vm")
DATA = Path(__file__).parent / "data"


def _decode(raw: bytes, version: int) -> list[tuple[int, int, object]]:
    dec = codec.Decoder()
    frames = dec.feed(raw)
    dec.close()
    return [(f.type, f.flags, codec.decode_frame(f, version=version)) for f in frames]


def _without_wake_up(items: list[tuple[int, int, object]]) -> list[tuple[int, int, object]]:
    out = []
    for t, flags, msg in items:
        if isinstance(msg, pb.SleepCommandMessage):
            msg = pb.SleepCommandMessage(result_completion_id=msg.result_completion_id, name=msg.name)
        out.append((t, flags, msg))
    return out


def test_captured_greet() -> None:
    raw = (DATA / "greet_v6.bin").read_bytes()
    output = "0401000000000011720f0a0d" + b'"Hello Alice"'.hex()
    end = "0003000000000000"
    assert raw.hex() == output + end
    [(t1, _, out), (t2, _, end)] = _decode(raw, 6)
    assert (t1, t2) == (T.OUTPUT_COMMAND, T.END)
    assert out == pb.OutputCommandMessage(value=pb.Value(content=b'"Hello Alice"'))
    assert end == pb.EndMessage()


@pytest.mark.parametrize("version", [5, 6, 7], ids=lambda v: f"v{v}")
def test_captured_sleep_call_run_suspend(version: int) -> None:
    items = _decode((DATA / f"sleep_call_run_suspend_v{version}.bin").read_bytes(), version)
    types = [t for t, _, _ in items]
    assert types == [T.SLEEP_COMMAND, T.CALL_COMMAND, T.RUN_COMMAND, T.PROPOSE_RUN_COMPLETION, T.SUSPENSION]
    sleep, call, run, propose, suspension = (m for _, _, m in items)
    assert sleep.result_completion_id == 1  # type: ignore[attr-defined]
    assert call == pb.CallCommandMessage(
        service_name="Greeter",
        handler_name="greet",
        parameter=b'"Bob"',
        idempotency_key="idem-1",
        invocation_id_notification_idx=2,
        result_completion_id=3,
    )
    assert run == pb.RunCommandMessage(result_completion_id=4, name="side")
    assert propose == pb.ProposeRunCompletionMessage(result_completion_id=4, value=b'"se"')
    # V7 asks for a ProposeRunCompletionAck; V5/V6 expect the full notification echoed.
    assert items[3][1] == (codec.REQUESTED_ACK if version >= 7 else 0)
    if version < 7:
        assert suspension == pb.SuspensionMessageV6(waiting_completions=[1], waiting_signals=[1])
    else:
        assert suspension == pb.SuspensionMessage(
            awaiting_on=pb.Future(
                waiting_completions=[1], waiting_signals=[1], combinator_type=pb.FIRST_COMPLETED
            )
        )


def test_captured_error_and_awaiting_on() -> None:
    [(t, _, err)] = _decode((DATA / "error_v7.bin").read_bytes(), 7)
    assert t == T.ERROR
    assert err == pb.ErrorMessage(code=500, message="boom", stacktrace="trace line")
    [(t, _, awaiting)] = _decode((DATA / "awaiting_on_v7.bin").read_bytes(), 7)
    assert t == T.AWAITING_ON
    assert awaiting == pb.AwaitingOnMessage(
        awaiting_on=pb.Future(waiting_signals=[17, 1], combinator_type=pb.FIRST_COMPLETED)
    )


@pytest.mark.parametrize("name", sorted(sdk_driver.SCENARIOS), ids=str)
def test_live_vm_matches_capture(name: str) -> None:
    fn, version = sdk_driver.SCENARIOS[name]
    live = _without_wake_up(_decode(fn(version), version))
    saved = _without_wake_up(_decode((DATA / f"{name}.bin").read_bytes(), version))
    assert live == saved


def _sleeping_vm(version: int) -> tuple[object, int]:
    vm = sdk_driver.new_vm(version)
    vm.sys_input()
    handle = vm.sys_sleep(1000)
    return vm, handle


@pytest.mark.parametrize("version", [5, 6, 7], ids=lambda v: f"v{v}")
def test_sdk_accepts_our_sleep_completion(version: int) -> None:
    vm, handle = _sleeping_vm(version)
    payload = nt.completion_notification(T.SLEEP_COMPLETION, 1)
    vm.notify_input(codec.encode_frame(T.SLEEP_COMPLETION, payload))  # type: ignore[attr-defined]
    progress = vm.do_progress(vm_mod.SingleUnresolvedFuture(handle))  # type: ignore[attr-defined]
    assert progress is vm_mod.DO_PROGRESS_ANY_COMPLETED
    assert vm.take_notification(handle) is None  # type: ignore[attr-defined]  # void


def test_sdk_accepts_our_awakeable_signal_and_id() -> None:
    vm = sdk_driver.new_vm(7)
    vm.sys_input()
    aid, handle = vm.sys_awakeable()
    assert aid == awakeable_id(sdk_driver.INVOCATION_ID, 17)
    vm.notify_input(codec.encode_frame(T.SIGNAL_NOTIFICATION, nt.signal_notification(17, value=b'"ok"')))
    assert vm.do_progress(vm_mod.SingleUnresolvedFuture(handle)) is vm_mod.DO_PROGRESS_ANY_COMPLETED
    assert vm.take_notification(handle) == b'"ok"'


def test_sdk_accepts_run_ack_v7() -> None:
    vm = sdk_driver.new_vm(7)
    vm.sys_input()
    run = vm.sys_run("side")
    vm.do_progress(vm_mod.SingleUnresolvedFuture(run.handle))
    vm.propose_run_completion_success(run.handle, b'"se"')
    ack = pb.ProposeRunCompletionAckMessage(completion_id=1)
    vm.notify_input(codec.encode_message(ack))
    assert vm.do_progress(vm_mod.SingleUnresolvedFuture(run.handle)) is vm_mod.DO_PROGRESS_ANY_COMPLETED
    assert vm.take_notification(run.handle) == b'"se"'


def test_sdk_accepts_lazy_state_completion() -> None:
    vm = sdk_driver.new_vm(6, key="obj", partial_state=True)
    vm.sys_input()
    handle = vm.sys_get_state("missing")
    (frame,) = codec.Decoder().feed(vm.take_output())
    assert frame.type == T.GET_LAZY_STATE_COMMAND
    completion_id = nt.command_completion_id(frame)
    assert completion_id == 1
    payload = nt.completion_notification(T.GET_LAZY_STATE_COMPLETION, completion_id, value=b"42")
    vm.notify_input(codec.encode_frame(T.GET_LAZY_STATE_COMPLETION, payload))
    assert vm.do_progress(vm_mod.SingleUnresolvedFuture(handle)) is vm_mod.DO_PROGRESS_ANY_COMPLETED
    assert vm.take_notification(handle) == b"42"


def test_sdk_replays_our_journal_without_rewriting_it() -> None:
    sleep = codec.encode_message(pb.SleepCommandMessage(wake_up_time=1, result_completion_id=1))
    done = codec.encode_frame(T.SLEEP_COMPLETION, nt.completion_notification(T.SLEEP_COMPLETION, 1))
    vm = sdk_driver.new_vm(6, known_entries=3, extra=sleep + done)
    vm.sys_input()
    handle = vm.sys_sleep(1000)
    assert vm.do_progress(vm_mod.SingleUnresolvedFuture(handle)) is vm_mod.DO_PROGRESS_ANY_COMPLETED
    vm.sys_write_output_success(b"1")
    vm.sys_end()
    items = _decode(vm.take_output(), 6)
    assert [t for t, _, _ in items] == [T.OUTPUT_COMMAND, T.END]
