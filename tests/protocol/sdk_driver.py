"""Drive the real SDK core (``restate._internal.PyVM``) without HTTP to get genuine protocol bytes.

Each scenario feeds a Start + Input built by our codec and returns the raw bytes the SDK wrote.
Run ``python tests/protocol/sdk_driver.py`` to refresh the blobs in ``data/`` (the sleep
command embeds wall-clock time, so blobs differ between runs in that one field).
"""

from __future__ import annotations

import sys
from pathlib import Path

from restate.vm import SingleUnresolvedFuture, VMWrapper
from restate_server.ids import InvocationId
from restate_server.protocol import codec, protocol_pb2 as pb

DATA = Path(__file__).parent / "data"
INVOCATION_ID = InvocationId.for_workflow("Svc", "k")


def new_vm(
    version: int, *, known_entries: int = 1, extra: bytes = b"", key: str = "", **start: object
) -> VMWrapper:
    """A VM that has received Start, Input and ``extra`` (already-framed replayed entries)."""
    vm = VMWrapper([("content-type", f"application/vnd.restate.invocation.v{version}")])
    msg = pb.StartMessage(
        id=INVOCATION_ID.to_bytes(),
        debug_id=str(INVOCATION_ID),
        known_entries=known_entries,
        key=key,
        random_seed=42,
        **start,  # type: ignore[arg-type]
    )
    inp = pb.InputCommandMessage(value=pb.Value(content=b'"Alice"'), headers=[pb.Header(key="a", value="b")])
    vm.notify_input(codec.encode_message(msg) + codec.encode_message(inp) + extra)
    assert vm.is_ready_to_execute()
    return vm


def greet(version: int) -> bytes:
    """Output + End for a handler that returns at once."""
    vm = new_vm(version)
    vm.sys_input()
    vm.sys_write_output_success(b'"Hello Alice"')
    vm.sys_end()
    return vm.take_output()


def sleep_call_run_suspend(version: int) -> bytes:
    """Sleep, Call with idempotency key, Run + proposal, then suspension (input closed)."""
    vm = new_vm(version)
    vm.sys_input()
    sleep = vm.sys_sleep(1000)
    vm.sys_call("Greeter", "greet", b'"Bob"', None, "idem-1", None)
    run = vm.sys_run("side")
    vm.do_progress(SingleUnresolvedFuture(run.handle))
    vm.propose_run_completion_success(run.handle, b'"se"')
    vm.notify_input_closed()
    vm.do_progress(SingleUnresolvedFuture(sleep))
    return vm.take_output()


def error(version: int) -> bytes:
    """An attempt failure reported by the SDK."""
    vm = new_vm(version)
    vm.sys_input()
    vm.notify_error("boom", "trace line")
    return vm.take_output()


def awaiting_on(version: int) -> bytes:
    """An awakeable awaited while the input stays open (bidi): V7 reports AwaitingOn."""
    vm = new_vm(version)
    vm.sys_input()
    _, handle = vm.sys_awakeable()
    vm.do_progress(SingleUnresolvedFuture(handle))
    return vm.take_output()


SCENARIOS = {
    "greet_v6": (greet, 6),
    "sleep_call_run_suspend_v5": (sleep_call_run_suspend, 5),
    "sleep_call_run_suspend_v6": (sleep_call_run_suspend, 6),
    "sleep_call_run_suspend_v7": (sleep_call_run_suspend, 7),
    "error_v7": (error, 7),
    "awaiting_on_v7": (awaiting_on, 7),
}


def capture() -> None:
    """Write every scenario's bytes to ``data/<name>.bin``."""
    DATA.mkdir(exist_ok=True)
    for name, (fn, version) in SCENARIOS.items():
        (DATA / f"{name}.bin").write_bytes(fn(version))


if __name__ == "__main__":
    capture()
    sys.exit(0)
