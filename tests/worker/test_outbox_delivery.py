"""The outbox shuffle: order per target, redelivery from the first failure, truncation of the delivered prefix."""

from __future__ import annotations

import asyncio

import pytest
from restate_server.log import records as rec
from restate_server.log.api import failed
from restate_server.worker.leadership import outbox as outbox_mod
from restate_server.worker.leadership.outbox import OutboxShuffle
from worker_env import disk_full, eventually


def _message(n: int) -> bytes:
    return rec.encode(rec.Resume(invocation_id=bytes([n]) * 24))


class Targets:
    """Target partitions' logs: accept appends unless the target is `broken`; keep what landed."""

    def __init__(self) -> None:
        self.landed: list[tuple[int, tuple[int, int] | None]] = []
        self.attempts: list[tuple[int, int]] = []
        self.broken: set[int] = set()
        self.truncated: list[int] = []

    def deliver(self, target: int, record: rec.Record) -> asyncio.Future[int]:
        assert record.dedup is not None
        self.attempts.append((target, record.dedup[1]))
        if target in self.broken:
            return failed(disk_full())
        self.landed.append((target, record.dedup))
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        future.set_result(len(self.landed))
        return future

    async def truncate(self, seq: int) -> int:
        self.truncated.append(seq)
        return seq


def _shuffle(targets: Targets) -> OutboxShuffle:
    return OutboxShuffle(0, targets.deliver, targets.truncate)


async def test_messages_are_delivered_in_order_tagged_and_truncated() -> None:
    targets = Targets()
    shuffle = _shuffle(targets)
    for seq, target in enumerate((1, 2, 1)):
        shuffle.enqueue(seq, target, _message(seq))
    shuffle.enqueue(1, 2, _message(1))  # already queued
    await shuffle.deliver_round()
    assert targets.landed == [(1, (0, 0)), (2, (0, 1)), (1, (0, 2))]
    assert targets.truncated == [2]
    assert shuffle.pending == []


async def test_after_a_failure_the_round_is_redone_from_the_first_failed_message() -> None:
    targets = Targets()
    targets.broken = {2}
    shuffle = _shuffle(targets)
    for seq, target in enumerate((1, 2, 1, 2)):
        shuffle.enqueue(seq, target, _message(seq))
    await shuffle.deliver_round()
    assert targets.truncated == [0]  # only the prefix before the failure
    assert shuffle.pending == [1, 2, 3]
    assert shuffle.failures == 1
    targets.broken.clear()
    await shuffle.deliver_round()
    assert shuffle.pending == []
    assert targets.truncated == [0, 3]
    assert shuffle.failures == 0
    # per target, sequences landed in increasing order (a higher one never overtook a failed lower one)
    for target in (1, 2):
        seqs = [dedup[1] for t, dedup in targets.landed if t == target and dedup is not None]
        assert seqs == sorted(seqs)
    assert [s for t, (_, s) in targets.landed if t == 2] == [1, 3]


async def test_the_delivery_task_retries_with_backoff_until_everything_landed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbox_mod, "backoff", lambda failures: 0.001)
    targets = Targets()
    targets.broken = {1}
    shuffle = _shuffle(targets)
    task = asyncio.create_task(shuffle.run())
    try:
        shuffle.enqueue(0, 1, _message(0))
        await eventually(lambda: len(targets.attempts) >= 3)
        assert targets.truncated == []
        targets.broken.clear()
        await eventually(lambda: targets.truncated == [0])
        shuffle.enqueue(1, 3, _message(1))
        await eventually(lambda: targets.truncated == [0, 1])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
