"""Waiters per partition and the worker handle the ingress and admin API use."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from restate_server.ids import InvocationId
from restate_server.log import records as rec
from restate_server.log.api import failed
from restate_server.rocksdb import Database
from restate_server.worker import actions as act
from restate_server.worker.api import WorkerHandle, WorkerUnavailable
from restate_server.worker.waiters import Waiters
from sm_env import invoke


def _completed(inv: bytes) -> act.InvocationCompleted:
    return act.InvocationCompleted(
        invocation_id=inv, result=rec.Value(content=b"x"), expires_at=None, idempotent=False
    )


async def test_failing_a_partition_fails_only_its_waiters() -> None:
    waiters = Waiters()
    _, submit0 = waiters.new_submit(0)
    request1, submit1 = waiters.new_submit(1)
    done0 = waiters.wait_completion(0, b"a")
    done0_again = waiters.wait_completion(0, b"a")
    done1 = waiters.wait_completion(1, b"b")
    assert waiters.fail_partition(0, WorkerUnavailable("stepped down")) == 3
    for future in (submit0, done0, done0_again):
        with pytest.raises(WorkerUnavailable):
            await future
    assert not submit1.done()
    assert not done1.done()
    waiters.submitted(act.SubmitOutcome(request_id=request1, outcome=act.Outcome.ACCEPTED))
    waiters.completed(_completed(b"b"))
    assert (await submit1).outcome is act.Outcome.ACCEPTED
    assert (await done1).result == rec.Value(content=b"x")
    assert waiters.fail_partition(1, WorkerUnavailable("x")) == 0


async def test_dropped_waiters_are_forgotten() -> None:
    waiters = Waiters()
    request, submit = waiters.new_submit(0)
    waiters.drop_submit(request)
    waiters.submitted(act.SubmitOutcome(request_id=request, outcome=act.Outcome.OK))
    assert not submit.done()
    future = waiters.wait_completion(0, b"a")
    waiters.drop_completion(b"a", future)
    waiters.drop_completion(b"a", future)
    waiters.completed(_completed(b"a"))
    assert not future.done()


class Appender:
    def __init__(self, waiters: Waiters, error: Exception | None = None) -> None:
        self.waiters = waiters
        self.error = error
        self.appended: list[tuple[int, rec.Record]] = []

    def append(self, partition: int, records: Sequence[rec.Record]) -> asyncio.Future[int]:
        if self.error is not None:
            return failed(self.error)
        for record in records:
            self.appended.append((partition, record))
            request = getattr(record, "submit_request", None)
            if request is not None:
                asyncio.get_running_loop().call_soon(
                    self.waiters.submitted,
                    act.SubmitOutcome(request_id=request, outcome=act.Outcome.ACCEPTED),
                )
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        future.set_result(1)
        return future


async def test_the_handle_appends_to_the_key_partition_and_waits_for_the_verdict(tmp_path: Path) -> None:
    db = Database(tmp_path / "db")
    try:
        waiters = Waiters()
        appender = Appender(waiters)
        handle = WorkerHandle(
            db=db, appender=appender, waiters=waiters, num_partitions=4, ready=lambda: False
        )
        record = invoke(n=1)
        inv = InvocationId.from_bytes(record.invocation_id)
        outcome = await handle.submit(inv.partition_key, record)
        assert outcome.outcome is act.Outcome.ACCEPTED
        assert appender.appended == [(handle.partition_for(inv.partition_key), record)]
        assert not handle.ready()
        other = invoke(n=2)
        assert await handle.append(3, [other]) == 1  # no verdict awaited (ingestion)
        assert appender.appended[-1] == (3, other)
        waiting = handle.wait_completion(record.invocation_id)
        handle.drop_completion(record.invocation_id, waiting)
        assert await handle.read_status(inv) is None
    finally:
        db.close()


async def test_a_refused_append_is_unavailable_and_leaves_no_waiter(tmp_path: Path) -> None:
    db = Database(tmp_path / "db")
    try:
        waiters = Waiters()
        handle = WorkerHandle(
            db=db,
            appender=Appender(waiters, WorkerUnavailable("disk full")),
            waiters=waiters,
            num_partitions=4,
        )
        with pytest.raises(WorkerUnavailable, match="disk full"):
            await handle.submit(0, invoke(n=1))
        assert waiters.fail_partition(0, WorkerUnavailable("x")) == 0
        assert handle.ready()
    finally:
        db.close()
