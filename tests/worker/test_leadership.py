"""Per-partition leadership: become leader, step down, epoch-fenced proposals, action routing."""

from __future__ import annotations

import pytest
from restate_server.log import records as rec
from restate_server.log.api import Fenced
from restate_server.storage import outbox, status
from restate_server.worker import actions as act
from restate_server.worker.errors import WorkerUnavailable
from restate_server.worker.leadership import proposals
from sm_env import START, call, effect, invoke
from worker_env import WorkerEnv, eventually

LATER = 1_700_000_060_000  # a minute after the virtual clock's start (ms)


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proposals, "RETRY_INITIAL", 0.001)


def _statuses(worker: WorkerEnv, partition: int) -> dict[bytes, status.Status]:
    return {inv: st.status for inv, st in status.scan(worker.txn(), partition)}


async def test_become_leader_announces_the_epoch_and_starts_effects_when_it_is_applied(
    worker: WorkerEnv,
) -> None:
    assert await worker.leadership.become_leader(0, 3)
    assert worker.leadership.epoch(0) == 3
    await eventually(lambda: worker.leadership.is_leader(0))
    await worker.applied(0)
    assert worker.processors[0].leader_epoch == 3
    [(_, announce)] = await worker.log.read(0, 1, 1)
    assert announce == rec.AnnounceLeader(leader_epoch=3, epoch=3)
    assert worker.leadership.led_partitions == [0]  # partition 1 is followed, not led
    assert worker.leadership.epoch(1) is None
    assert await worker.leadership.become_leader(0, 3)  # already leading at that epoch: nothing to do


async def test_become_leader_gives_up_when_a_newer_sequencer_holds_the_log(worker: WorkerEnv) -> None:
    await worker.log.acquire(0, 5)  # another node
    assert not await worker.leadership.become_leader(0, 4)
    assert worker.leadership.epoch(0) is None
    assert not worker.leadership.is_leader(0)


async def test_the_announcement_is_retried_until_the_log_takes_it(worker: WorkerEnv) -> None:
    worker.storage.failures = 3  # the disk is full for three writes
    assert await worker.leadership.become_leader(0, 1)
    await eventually(lambda: worker.leadership.is_leader(0))
    assert worker.storage.failures == 0


async def test_leadership_resumes_the_work_a_previous_leader_left(worker: WorkerEnv) -> None:
    # a previous leader (epoch 1) left: a running invocation, a delayed one (a timer), an outbox message
    running, delayed, parent = invoke(n=1), invoke(n=2, execute_at=LATER), invoke(n=3)
    await worker.append(0, running, delayed, parent, epoch=0)
    await worker.log.acquire(0, 1)
    await worker.append(
        0, effect(parent.invocation_id, call("Greeter", "greet"), epoch=1), epoch=1
    )  # the call is in the outbox
    await worker.applied(0)
    [(seq, target, _)] = outbox.pending(worker.txn(), 0)
    await worker.lead_all(epoch=2)
    # the invocations resume (no deployment is registered: the attempt fails and backs off)
    await eventually(lambda: running.invocation_id in worker.leadership.invoker.invocations)
    state = worker.leadership.invoker.invocations[running.invocation_id]
    await eventually(lambda: state.last_failure_code == "RT0011")
    assert [fire_at for fire_at, _ in worker.leadership.timers.pending(0)] == [LATER]
    # the outbox message is delivered to its target partition, then truncated through the log
    await eventually(lambda: not outbox.pending(worker.txn(), 0))
    await worker.applied(target)
    assert any(r.dedup == (0, seq) for _, r in await worker.log.read(target, 1, 100))


async def test_proposals_carry_the_partition_epoch(worker: WorkerEnv) -> None:
    assert await worker.leadership.become_leader(0, 4)
    assert await worker.leadership.become_leader(1, 7)
    await eventually(lambda: worker.leadership.led_partitions == [0, 1])
    inv = invoke(n=1)
    lsn = await worker.leadership.propose(1, effect(inv.invocation_id))
    [(_, proposed)] = await worker.log.read(1, lsn, lsn)
    assert proposed.epoch == 7
    assert (await worker.log.find_tail(1)).epoch == 7


async def test_a_fenced_proposal_steps_the_partition_down_and_tells_the_cluster(worker: WorkerEnv) -> None:
    await worker.lead_all(epoch=1)
    await worker.log.acquire(0, 2)  # another node took partition 0
    with pytest.raises(Fenced):
        await worker.leadership.propose(0, effect(invoke(n=1).invocation_id))
    assert worker.fenced == [(0, 1)]
    assert worker.leadership.led_partitions == [1]  # partition 1 is untouched
    # a follower: its processor keeps applying what the new leader appends, and does nothing else
    await worker.append(0, invoke(n=9), epoch=2)
    await worker.applied(0)
    assert invoke(n=9).invocation_id in _statuses(worker, 0)
    assert invoke(n=9).invocation_id not in worker.leadership.invoker.invocations
    failed = worker.leadership.propose(0, effect(invoke(n=9).invocation_id))
    with pytest.raises(WorkerUnavailable):
        await failed


async def test_a_newer_announcement_applied_steps_down(worker: WorkerEnv) -> None:
    await worker.lead_all(epoch=1)
    await worker.log.acquire(1, 3)
    await worker.append(1, rec.AnnounceLeader(leader_epoch=3, epoch=3), epoch=3)
    await eventually(lambda: worker.leadership.led_partitions == [0])
    assert worker.fenced == [(1, 1)]


async def test_step_down_stops_the_partition_effects_at_once(worker: WorkerEnv) -> None:
    await worker.lead_all(epoch=1)
    for partition in (0, 1):
        await worker.leadership.append(
            partition, [invoke(n=10 + partition, execute_at=LATER)]
        )  # a timer on each
        await worker.leadership.append(partition, [invoke(n=20 + partition)])  # an attempt on each
        await worker.applied(partition)
    invoker = worker.leadership.invoker
    await eventually(lambda: len(invoker.invocations) == 2)
    request_id, submit = worker.waiters.new_submit(0)
    other_id, other = worker.waiters.new_submit(1)
    proposals_before = worker.storage.writes

    worker.leadership.step_down(0)

    assert worker.leadership.led_partitions == [1]
    assert [state.partition for state in invoker.invocations.values()] == [1]  # 0's attempt is aborted
    assert worker.leadership.timers.pending(0) == []
    assert len(worker.leadership.timers.pending(1)) == 1
    assert not worker.supervisor.running("outbox-0")
    assert worker.supervisor.running("outbox-1")
    with pytest.raises(WorkerUnavailable):
        await submit
    assert not other.done()
    worker.waiters.drop_submit(request_id)
    worker.waiters.drop_submit(other_id)
    assert worker.storage.writes == proposals_before  # aborting proposes no terminal
    worker.leadership.step_down(0)  # twice is harmless


async def test_actions_of_a_partition_not_led_are_dropped(worker: WorkerEnv) -> None:
    inv = invoke(n=1).invocation_id
    done = act.InvocationCompleted(
        invocation_id=inv, result=rec.Value(content=b""), expires_at=None, idempotent=False
    )
    waiting = worker.waiters.wait_completion(0, inv)
    worker.leadership.handle(0, [act.StartAttempt(partition=0, invocation_id=inv), done])
    assert not worker.leadership.invoker.invocations
    assert not waiting.done()
    await worker.lead_all()
    worker.leadership.handle(
        0,
        [
            act.RegisterTimer(partition=0, key=b"t" * 8, fire_at=START),
            act.StartAttempt(partition=0, invocation_id=inv),
            act.ForwardNotification(invocation_id=inv, journal_index=1, type=0x800D, payload=b""),
            done,
        ],
    )
    assert waiting.done()
    assert inv in worker.leadership.invoker.invocations
    worker.leadership.handle(0, [act.AbortAttempt(invocation_id=inv)])
    assert inv not in worker.leadership.invoker.invocations


async def test_appends_fail_with_a_retryable_error_only(worker: WorkerEnv) -> None:
    with pytest.raises(WorkerUnavailable, match="has no leader on this node"):
        await worker.leadership.append(0, [invoke(n=1)])
    await worker.lead_all()
    worker.storage.full = True
    with pytest.raises(WorkerUnavailable, match="No space left on device") as failure:
        await worker.leadership.append(0, [invoke(n=1)])
    assert isinstance(failure.value.__cause__, OSError)
    worker.storage.full = False
    assert await worker.leadership.append(0, [invoke(n=1)]) > 0


async def test_a_fenced_append_steps_down(worker: WorkerEnv) -> None:
    await worker.lead_all()
    await worker.log.acquire(1, 9)
    with pytest.raises(WorkerUnavailable):
        await worker.leadership.append(1, [invoke(n=1)])
    assert worker.fenced == [(1, 1)]
