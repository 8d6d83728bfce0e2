"""Journal rows: small payloads inline, large ones in rows of their own; reads see no difference."""

from __future__ import annotations

from pathlib import Path

import pytest
from restate_server.rocksdb import Database
from restate_server.storage import journal, keys
from restate_server.storage.transaction import Transaction

INV = bytes([5]) * 24


@pytest.fixture
def db(tmp_path: Path):
    store = Database(tmp_path / "db")
    yield store
    store.close()


def test_large_payloads_are_read_back_whole_and_deleted_with_the_journal(db: Database) -> None:
    small, large = b"s" * 10, b"L" * (journal.INLINE_PAYLOAD + 1)
    txn = Transaction(db)
    journal.append(txn, 1, INV, 0, 0x0400, 0, large)
    journal.append(txn, 1, INV, 1, 0x0401, 3, small)
    txn.commit()
    row = db.get(keys.journal(1, INV, 0))
    assert row is not None
    assert len(row) < 100  # the journal row holds only the head
    assert journal.head(row) == (0x0400, 0, len(large))
    entries = journal.read(Transaction(db), 1, INV)
    assert [(e.type, e.flags, e.payload) for e in entries] == [(0x0400, 0, large), (0x0401, 3, small)]
    got = journal.get(Transaction(db), 1, INV, 0)
    assert got is not None
    assert got.payload == large
    txn = Transaction(db)
    journal.delete_all(txn, 1, INV, 2)
    txn.commit()
    assert journal.read(Transaction(db), 1, INV) == []
    assert db.get(keys.journal_payload(1, INV, 0)) is None
