"""State commands: lazy reads answered from the store, writes applied in journal order, admin patches."""

from __future__ import annotations

from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.storage.state_version import state_version
from sm_env import TestEnv, command, effect, end_with, invoke
from sm_matchers import decode, forwarded, started


def _set(key: bytes, content: bytes) -> tuple[int, int, bytes]:
    return command(pb.SetStateCommandMessage(key=key, value=pb.Value(content=content)))


def _running_object(env: TestEnv) -> bytes:
    record = invoke("Counter", "add", key="k")
    env.apply(record)
    return record.invocation_id


def test_set_clear_and_clear_all_change_the_object_state(env: TestEnv) -> None:
    inv = _running_object(env)
    env.apply(effect(inv, _set(b"a", b"1"), _set(b"b", b"2"), _set(b"a", b"3")))
    assert env.state("Counter", "k") == {b"a": b"3", b"b": b"2"}
    env.apply(effect(inv, command(pb.ClearStateCommandMessage(key=b"a")), first=4))
    assert env.state("Counter", "k") == {b"b": b"2"}
    env.apply(effect(inv, command(pb.ClearAllStateCommandMessage()), first=5))
    assert env.state("Counter", "k") == {}


def test_lazy_reads_are_answered_with_a_completion(env: TestEnv) -> None:
    inv = _running_object(env)
    reads = (
        command(pb.GetLazyStateCommandMessage(key=b"a", result_completion_id=1)),
        command(pb.GetLazyStateCommandMessage(key=b"missing", result_completion_id=2)),
        command(pb.GetLazyStateKeysCommandMessage(result_completion_id=3)),
    )
    actions = env.apply(effect(inv, _set(b"a", b"1"), _set(b"b", b"2"), *reads))
    journal = env.journal(inv)
    notes = [decode(t, journal[i].payload) for t, i in forwarded(actions)]
    assert notes == [
        pb.GetLazyStateCompletionNotificationMessage(completion_id=1, value=pb.Value(content=b"1")),
        pb.GetLazyStateCompletionNotificationMessage(completion_id=2, void=pb.Void()),
        pb.GetLazyStateKeysCompletionNotificationMessage(
            completion_id=3, state_keys=pb.StateKeys(keys=[b"a", b"b"])
        ),
    ]


def test_eager_state_commands_are_only_journaled(env: TestEnv) -> None:
    inv = _running_object(env)
    eager = command(pb.GetEagerStateCommandMessage(key=b"a", void=pb.Void()))
    assert forwarded(env.apply(effect(inv, eager))) == []
    assert env.journal_types(inv) == [T.INPUT_COMMAND, T.GET_EAGER_STATE_COMMAND]


def test_patch_state_replaces_the_state_unless_the_version_moved(env: TestEnv) -> None:
    inv = _running_object(env)
    env.apply(effect(inv, _set(b"a", b"1")), end_with(inv, b"", first=2))  # the key is free again
    stale = rec.PatchState(service="Counter", key="k", new_state={b"x": b"9"}, expected_version="stale")
    env.apply(stale)
    assert env.state("Counter", "k") == {b"a": b"1"}
    current = state_version([(b"a", b"1")])
    env.apply(rec.PatchState(service="Counter", key="k", new_state={b"x": b"9"}, expected_version=current))
    assert env.state("Counter", "k") == {b"x": b"9"}
    env.apply(rec.PatchState(service="Counter", key="k", new_state={}))
    assert env.state("Counter", "k") == {}


def test_patch_state_waits_for_the_invocations_holding_the_key(env: TestEnv) -> None:
    """As upstream: a patch is queued in the key's inbox, in order with the invocations waiting there."""
    first = _running_object(env)
    env.apply(effect(first, _set(b"a", b"1")))
    env.apply(rec.PatchState(service="Counter", key="k", new_state={b"a": b"patched"}))
    second = invoke("Counter", "add", key="k", n=2)
    env.apply(second)
    assert env.state("Counter", "k") == {b"a": b"1"}  # not under the running handler
    actions = env.apply(end_with(first, b"", first=2))
    assert env.state("Counter", "k") == {b"a": b"patched"}
    assert started(actions) == [second.invocation_id]  # then the next invocation runs
    assert env.lock_holder("Counter", "k") == second.invocation_id
