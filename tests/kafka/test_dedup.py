"""Producer dedup in a partition: a Kafka partition's offsets, replayed or interleaved, apply once.

Runs the real state machine on a real store: what a partition keeps per producer is the highest
sequence applied, so two readers of one Kafka partition (before and after a crash, or the old and the
new owner after a rebalance), each appending in offset order, add up to each offset exactly once.
"""

from __future__ import annotations

from pathlib import Path

from restate_server.ids import InvocationId, partition_key_for
from restate_server.log.records import Invoke, Source
from restate_server.rocksdb import Database
from restate_server.storage import fsm, status
from restate_server.storage.transaction import Transaction
from restate_server.worker.state_machine import Context, apply

PARTITION = 0
PRODUCER = "kafka:00112233445566778899aabbccddeeff"


def _lookup(name: str) -> tuple[str, dict[str, str | None]] | None:
    return ("VirtualObject", {"add": "Exclusive"}) if name == "Counter" else None


class Partition:
    """One partition store; every append gets a fresh invocation id (as upstream's random ones), so
    only the dedup key can tell a re-read record from a new one."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = Database(tmp_path / "db")
        self.offsets: dict[bytes, int] = {}

    def append(self, offsets: list[int]) -> None:
        ctx = Context(Transaction(self.db), PARTITION, 1, _lookup, now=1000)
        for offset in offsets:
            invocation_id = InvocationId.generate(partition_key_for("k")).to_bytes()
            self.offsets[invocation_id] = offset
            apply(ctx, self._invoke(invocation_id, offset))
        ctx.flush()
        ctx.txn.commit()

    def invoked_offsets(self) -> list[int]:
        """The offsets that became invocations, sorted (a duplicate shows twice)."""
        return sorted(self.offsets[inv] for inv, _ in status.scan(Transaction(self.db), PARTITION))

    @staticmethod
    def _invoke(invocation_id: bytes, offset: int) -> Invoke:
        return Invoke(
            invocation_id=invocation_id,
            service="Counter",
            handler="add",
            key="k",
            service_ty="VirtualObject",
            handler_ty="Exclusive",
            headers=[],
            body=str(offset).encode(),
            created_at=1000 + offset,
            source=Source(kind="subscription", subscription_id="sub_x"),
            dedup=(PRODUCER, offset),
        )


def test_a_reread_after_a_crash_is_dropped(tmp_path: Path) -> None:
    partition = Partition(tmp_path)
    partition.append([0, 1, 2, 3])
    partition.append([2, 3])  # read again from an older committed offset
    partition.append([2, 3, 4, 5])
    assert partition.invoked_offsets() == [0, 1, 2, 3, 4, 5]


def test_two_readers_interleaved_apply_each_offset_once(tmp_path: Path) -> None:
    partition = Partition(tmp_path)
    partition.append([0, 1, 2, 3, 4])  # the old owner, before its partition was revoked
    # the old owner still appends 5..8 while the new one resumes from the last commit (3)
    old_owner, new_owner = [5, 6, 7, 8], [3, 4, 5, 6, 7, 8, 9]
    interleaved = [5, 3, 6, 4, 5, 7, 6, 8, 7, 8, 9]
    assert sorted(interleaved) == sorted(old_owner + new_owner)
    partition.append(interleaved)
    assert partition.invoked_offsets() == list(range(10))


def test_producers_and_partitions_keep_separate_positions(tmp_path: Path) -> None:
    db = Database(tmp_path / "db")
    txn = Transaction(db)
    assert not fsm.seen_duplicate(txn, PARTITION, PRODUCER, 10)
    assert not fsm.seen_duplicate(txn, PARTITION, "kafka:other", 3)
    assert not fsm.seen_duplicate(txn, PARTITION, 1, 3)  # an outbox producer (source partition 1)
    assert fsm.seen_duplicate(txn, PARTITION, PRODUCER, 10)
    assert fsm.seen_duplicate(txn, PARTITION, "kafka:other", 2)
    assert fsm.seen_duplicate(txn, PARTITION, 1, 3)
    assert not fsm.seen_duplicate(txn, PARTITION + 1, PRODUCER, 10)  # each partition on its own
