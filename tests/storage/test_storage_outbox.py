"""The outbox table: sequence numbers, pending messages and truncation past a persisted head."""

from __future__ import annotations

from pathlib import Path

from restate_server.rocksdb import Database
from restate_server.storage import outbox
from restate_server.storage.transaction import Transaction


def test_truncation_removes_up_to_the_sequence_and_later_scans_start_past_it(tmp_path: Path) -> None:
    db = Database(tmp_path / "db")
    try:
        txn = Transaction(db)
        seqs = [outbox.add(txn, 2, target, b"r%d" % target) for target in (0, 1, 3, 0)]
        txn.commit()
        assert seqs == [0, 1, 2, 3]
        txn = Transaction(db)
        assert outbox.truncate(txn, 2, 1) == 2
        txn.commit()
        txn = Transaction(db)
        assert outbox.pending(txn, 2) == [(2, 3, b"r3"), (3, 0, b"r0")]
        assert outbox.truncate(txn, 2, 0) == 0
        assert outbox.truncate(txn, 2, 10) == 2
        assert outbox.pending(txn, 2) == []
        assert outbox.add(txn, 2, 1, b"next") == 4
        assert outbox.pending(txn, 2) == [(4, 1, b"next")]
        assert outbox.pending(txn, 3) == []
    finally:
        db.close()
