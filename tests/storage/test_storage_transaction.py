"""The batch transaction and its per-record savepoint over a real RocksDB store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from restate_server.rocksdb import Database
from restate_server.storage.transaction import Transaction


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "db")
    yield database
    database.close()


def _seed(db: Database, **rows: bytes) -> None:
    txn = Transaction(db)
    for key, value in rows.items():
        txn.put(key.encode(), value)
    txn.commit()


def test_a_released_savepoint_keeps_its_writes_and_a_rolled_back_one_drops_them(db: Database) -> None:
    _seed(db, a=b"0", b=b"0")
    txn = Transaction(db)
    txn.savepoint()
    txn.put(b"a", b"1")
    txn.release()
    txn.savepoint()
    txn.put(b"a", b"2")
    txn.delete(b"b")
    txn.put(b"c", b"2")
    assert (txn.get(b"a"), txn.get(b"b"), txn.get(b"c")) == (b"2", None, b"2")
    txn.rollback()
    assert (txn.get(b"a"), txn.get(b"b"), txn.get(b"c")) == (b"1", b"0", None)
    txn.commit()
    assert list(db.scan(b"a", b"z")) == [(b"a", b"1"), (b"b", b"0")]


def test_scans_inside_a_savepoint_merge_the_store_the_batch_and_the_savepoint(db: Database) -> None:
    _seed(db, p1=b"db", p2=b"db", p3=b"db")
    txn = Transaction(db)
    txn.put(b"p2", b"batch")
    txn.savepoint()
    txn.delete(b"p3")
    txn.put(b"p4", b"layer")
    assert list(txn.scan_prefix(b"p")) == [(b"p1", b"db"), (b"p2", b"batch"), (b"p4", b"layer")]
    assert list(txn.scan_from(b"p2", b"p")) == [(b"p2", b"batch"), (b"p4", b"layer")]
    txn.delete_prefix(b"p")
    assert list(txn.scan_prefix(b"p")) == []
    txn.rollback()
    assert [k for k, _ in txn.scan_prefix(b"p")] == [b"p1", b"p2", b"p3"]


def test_savepoints_are_not_nested_and_do_not_outlive_the_batch(db: Database) -> None:
    txn = Transaction(db)
    with pytest.raises(RuntimeError):
        txn.release()
    with pytest.raises(RuntimeError):
        txn.rollback()
    txn.savepoint()
    with pytest.raises(RuntimeError):
        txn.savepoint()
    with pytest.raises(RuntimeError):
        txn.commit()
