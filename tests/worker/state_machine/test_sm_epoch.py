"""Epoch fencing: a leader's proposals made under an epoch older than the newest announced one are dropped."""

from __future__ import annotations

from restate_server.log import records as rec
from sm_env import TestEnv, call, effect, invoke


def test_records_of_an_older_epoch_than_the_announced_leader_are_dropped(env: TestEnv) -> None:
    record = invoke()
    env.apply(record, rec.AnnounceLeader(leader_epoch=1, epoch=1))
    env.apply(rec.AnnounceLeader(leader_epoch=2, epoch=2))
    assert env.leader_epoch() == 2

    stale = effect(record.invocation_id, call("Greeter", "greet"), epoch=1)
    assert env.apply(stale) == []
    assert env.must_status(record.invocation_id).commands == 1

    current = effect(record.invocation_id, call("Greeter", "greet"), epoch=2)
    assert env.apply(current) != []
    assert env.must_status(record.invocation_id).commands == 2


def test_records_from_outside_the_leader_carry_no_epoch_and_are_never_fenced(env: TestEnv) -> None:
    env.apply(rec.AnnounceLeader(leader_epoch=5, epoch=5))
    record = invoke()
    assert env.apply(record) != []
    assert env.status(record.invocation_id) is not None


def test_a_stale_announcement_does_not_move_the_epoch_back(env: TestEnv) -> None:
    env.apply(rec.AnnounceLeader(leader_epoch=3, epoch=3), rec.AnnounceLeader(leader_epoch=2, epoch=2))
    assert env.leader_epoch() == 3


def test_a_stale_outbox_truncation_is_dropped(env: TestEnv) -> None:
    parent = invoke()
    env.apply(parent, rec.AnnounceLeader(leader_epoch=2, epoch=2))
    env.apply(effect(parent.invocation_id, call("Greeter", "greet")))
    env.apply(rec.TruncateOutbox(up_to_seq=0, epoch=1))
    assert len(env.outbox()) == 1
    env.apply(rec.TruncateOutbox(up_to_seq=0, epoch=2))
    assert env.outbox() == []
