"""The leader's outbox shuffle: delivered messages are truncated by a log record, never deleted directly."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from restate_server.log import records as rec
from restate_server.rocksdb import Database
from restate_server.storage import outbox
from restate_server.storage.transaction import Transaction
from restate_server.worker.leader import Leader


class _RecordingLog:
    """Accepts every append at once and remembers it."""

    def __init__(self) -> None:
        self.appends: list[tuple[int, list[rec.Record]]] = []

    def submit(self, partition: int, records: Sequence[rec.Record], epoch: int) -> asyncio.Future[int]:
        self.appends.append((partition, list(records)))
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        future.set_result(len(self.appends))
        return future


async def test_delivered_messages_are_truncated_through_the_log(tmp_path: Path) -> None:
    db = Database(tmp_path / "db")
    try:
        txn = Transaction(db)
        messages = [
            (outbox.add(txn, 0, target, rec.encode(rec.Resume(invocation_id=bytes([n]) * 24))), target)
            for n, target in enumerate((1, 2, 1))
        ]
        txn.commit()
        log = _RecordingLog()
        leader = Leader.__new__(Leader)  # only the shuffle's part of the leader is exercised
        leader.db, leader.log, leader.epoch = db, log, 4  # type: ignore[assignment]
        leader._shuffle_queues, leader._shuffle_tasks = {}, {}
        for seq, target in messages:
            leader._shuffle(0, seq, target, rec.encode(rec.Resume(invocation_id=bytes([seq]) * 24)))
        await asyncio.gather(*leader._shuffle_tasks.values())

        *deliveries, (partition, [truncate]) = log.appends
        assert [(p, r[0].dedup) for p, r in deliveries] == [(1, (0, 0)), (2, (0, 1)), (1, (0, 2))]
        assert (partition, truncate) == (0, rec.TruncateOutbox(up_to_seq=2, epoch=4))
        # the rows stay until the state machine applies the truncation, on every replica alike
        assert [seq for seq, _, _ in outbox.pending(Transaction(db), 0)] == [0, 1, 2]
    finally:
        db.close()
