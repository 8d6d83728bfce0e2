"""Retention cleanup: bounded scan steps, purges in bounded batches, only expired completed invocations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from restate_server.log.records import Purge
from restate_server.rocksdb import Database
from restate_server.storage import status
from restate_server.storage.status import InvocationStatus, Status
from restate_server.storage.transaction import Transaction
from restate_server.worker.cleaner import Cleaner
from restate_server.worker.errors import WorkerUnavailable
from status_rows import greeter_status

NOW = 10_000


def _row(state: Status, completed_at: int | None, retention: int) -> InvocationStatus:
    return greeter_status(state, completed_at=completed_at, completion_retention=retention)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(tmp_path / "db", wal=False)
    yield database  # type: ignore[misc]
    database.close()


def _fill(db: Database, partition: int, rows: dict[bytes, InvocationStatus]) -> None:
    txn = Transaction(db)
    for inv, row in rows.items():
        status.put(txn, partition, inv, row)
    txn.commit()


def _inv(n: int) -> bytes:
    return n.to_bytes(24, "big")


class Purges:
    def __init__(self, refused: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.proposed: list[tuple[int, list[bytes], int]] = []
        self.refused = refused

    async def __call__(self, partition: int, purge: Purge) -> int:
        if partition in self.refused:
            raise WorkerUnavailable("not led")
        self.proposed.append((partition, purge.invocation_ids, purge.now))
        return len(self.proposed)


async def test_only_expired_completed_invocations_are_purged_in_bounded_batches(db: Database) -> None:
    expired = {_inv(n): _row(Status.COMPLETED, 1_000, 1_000) for n in range(7)}
    kept = {
        _inv(100): _row(Status.COMPLETED, 9_000, 5_000),  # retained until 14 000
        _inv(101): _row(Status.SUSPENDED, None, 0),
        _inv(102): _row(Status.INVOKED, None, 0),
    }
    _fill(db, 0, {**expired, **kept})
    _fill(db, 1, {_inv(200): _row(Status.COMPLETED, 1_000, 1)})
    purges = Purges()
    cleaner = Cleaner(
        db,
        partitions=lambda: [0, 1],
        propose=purges,
        interval=1,
        now_ms=lambda: NOW,
        scan_chunk=3,
        purge_batch=3,
    )
    assert await cleaner.clean_expired() == 8
    assert [(p, len(ids)) for p, ids, _ in purges.proposed] == [(0, 3), (0, 3), (0, 1), (1, 1)]
    assert sorted(i for p, ids, _ in purges.proposed if p == 0 for i in ids) == sorted(expired)
    assert {now for _, _, now in purges.proposed} == {NOW}


async def test_a_partition_no_longer_led_is_skipped(db: Database) -> None:
    _fill(db, 0, {_inv(1): _row(Status.COMPLETED, 1, 1)})
    _fill(db, 1, {_inv(2): _row(Status.COMPLETED, 1, 1)})
    purges = Purges(refused={0})
    cleaner = Cleaner(db, partitions=lambda: [0, 1], propose=purges, interval=1, now_ms=lambda: NOW)
    assert await cleaner.clean_expired() == 1
    assert purges.proposed == [(1, [_inv(2)], NOW)]


async def test_the_cleaner_runs_a_pass_every_interval(db: Database) -> None:
    _fill(db, 0, {_inv(1): _row(Status.COMPLETED, 1, 1)})
    purges = Purges()
    cleaner = Cleaner(db, partitions=lambda: [0], propose=purges, interval=0.001, now_ms=lambda: NOW)
    task = asyncio.create_task(cleaner.run())
    try:
        async with asyncio.timeout(5):
            while len(purges.proposed) < 2:  # noqa: ASYNC110 - counting passes
                await asyncio.sleep(0.001)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
