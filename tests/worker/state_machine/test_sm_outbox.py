"""Outbox and shuffle: records for other partitions go through the outbox, are applied once, then truncated."""

from __future__ import annotations

from pathlib import Path

from restate_server.ids import InvocationId, partition_of
from restate_server.log import records as rec
from restate_server.worker import actions as act
from sm_env import TestEnv, call, effect, invoke, value
from sm_matchers import of_type

TARGET = InvocationId.deterministic(5, "target").to_bytes()


def _response(completion_id: int, *, source: int, seq: int) -> rec.InvocationResponse:
    return rec.InvocationResponse(
        invocation_id=TARGET, completion_id=completion_id, result=value(b""), dedup=(source, seq)
    )


def _running_target(env: TestEnv) -> None:
    env.apply(invoke(inv=TARGET))


def test_a_redelivered_message_is_applied_once_per_source_partition_and_sequence(env: TestEnv) -> None:
    _running_target(env)
    env.apply(_response(1, source=3, seq=0), _response(2, source=3, seq=1))
    env.apply(_response(1, source=3, seq=0), _response(2, source=3, seq=1))  # the shuffle retried
    env.apply(_response(3, source=4, seq=0))  # same sequence, other source: a different message
    assert env.must_status(TARGET).completed_ids == [1, 2, 3]
    assert len(env.journal(TARGET)) == 4


def test_truncate_outbox_removes_delivered_messages_up_to_the_sequence(env: TestEnv) -> None:
    parent = invoke()
    env.apply(parent)
    calls = [call("Greeter", "greet", id_idx=2 * i + 1, cid=2 * i + 2) for i in range(4)]
    actions = env.apply(effect(parent.invocation_id, *calls))
    assert [m.seq for m in of_type(actions, act.NewOutboxMessage)] == [0, 1, 2, 3]
    assert [seq for seq, _, _ in env.outbox()] == [0, 1, 2, 3]

    env.apply(rec.TruncateOutbox(up_to_seq=1))
    assert [seq for seq, _, _ in env.outbox()] == [2, 3]
    env.apply(rec.TruncateOutbox(up_to_seq=0))  # behind the head: nothing to do
    assert [seq for seq, _, _ in env.outbox()] == [2, 3]
    env.apply(rec.TruncateOutbox(up_to_seq=3))
    assert env.outbox() == []
    # new messages keep counting after the truncated ones
    actions = env.apply(effect(parent.invocation_id, call("Greeter", "greet", id_idx=9, cid=10), first=5))
    assert [m.seq for m in of_type(actions, act.NewOutboxMessage)] == [4]
    assert [seq for seq, _, _ in env.outbox()] == [4]


def test_messages_go_to_the_partition_owning_the_target_key(tmp_path: Path) -> None:
    env = TestEnv(tmp_path / "store", partition=1, num_partitions=4)
    try:
        parent = invoke()
        env.apply(parent)
        keys = ["a", "b", "c", "d", "e"]
        calls = [call("Counter", "add", key=k, id_idx=2 * i + 1, cid=2 * i + 2) for i, k in enumerate(keys)]
        messages = of_type(env.apply(effect(parent.invocation_id, *calls)), act.NewOutboxMessage)
        for message in messages:
            child = rec.decode(message.record)
            assert isinstance(child, rec.Invoke)
            pk = InvocationId.from_bytes(child.invocation_id).partition_key
            assert (message.partition, message.target_partition) == (1, partition_of(pk, 4))
        assert len({m.target_partition for m in messages}) > 1
        assert [target for _, target, _ in env.outbox()] == [m.target_partition for m in messages]
    finally:
        env.close()
