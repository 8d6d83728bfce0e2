"""Status rows beside their helpers: the indexes of invoked and of unfinished invocations (kept by
every status write, built once for older stores) and large results kept in rows of their own."""

from __future__ import annotations

from pathlib import Path

import pytest
from restate_server.rocksdb import Database
from restate_server.storage import keys, status
from restate_server.storage.status import InvocationStatus, Status
from restate_server.storage.transaction import Transaction
from status_rows import greeter_status


def _status(state: Status) -> InvocationStatus:
    return greeter_status(state, created_at=1, modified_at=2)


@pytest.fixture
def db(tmp_path: Path):
    store = Database(tmp_path / "db")
    yield store
    store.close()


def test_status_writes_keep_the_index_of_invoked_invocations(db: Database) -> None:
    a, b, c = (bytes([n]) * 24 for n in (1, 2, 3))
    txn = Transaction(db)
    status.put(txn, 0, a, _status(Status.INVOKED))
    status.put(txn, 0, b, _status(Status.INVOKED))
    status.put(txn, 0, c, _status(Status.INBOXED))
    txn.commit()
    assert status.scan_invoked(Transaction(db), 0) == [a, b]
    txn = Transaction(db)
    status.put(txn, 0, a, _status(Status.SUSPENDED))
    status.put(txn, 0, c, _status(Status.INVOKED))
    status.delete(txn, 0, b)
    txn.commit()
    assert status.scan_invoked(Transaction(db), 0) == [c]
    assert status.scan_invoked(Transaction(db), 1) == []


def _unfinished(db: Database, partition: int) -> list[bytes]:
    prefix = keys.table(keys.UNFINISHED, partition)
    return [k[len(prefix) :] for k, _ in db.scan(prefix, prefix + b"\xff")]


def test_status_writes_keep_the_index_of_unfinished_invocations(db: Database) -> None:
    a, b, c = (bytes([n]) * 24 for n in (1, 2, 3))
    txn = Transaction(db)
    for inv, state in ((a, Status.SCHEDULED), (b, Status.INBOXED), (c, Status.COMPLETED)):
        status.put(txn, 0, inv, _status(state))
    txn.commit()
    assert _unfinished(db, 0) == [a, b]
    txn = Transaction(db)
    status.put(txn, 0, a, _status(Status.COMPLETED))
    status.put(txn, 0, c, _status(Status.PAUSED))  # restarted as new: unfinished again
    status.delete(txn, 0, b)
    txn.commit()
    assert _unfinished(db, 0) == [c]


def test_a_store_written_before_the_indexes_gets_them_once(db: Database) -> None:
    running, done, waiting = bytes([7]) * 24, bytes([8]) * 24, bytes([9]) * 24
    txn = Transaction(db)
    txn.put(keys.status(3, running), _status(Status.INVOKED).encode())  # rows without their index
    txn.put(keys.status(3, done), _status(Status.COMPLETED).encode())
    txn.put(keys.status(3, waiting), _status(Status.SUSPENDED).encode())
    txn.commit()
    txn = Transaction(db)
    assert status.build_indexes(txn, 3)
    txn.commit()
    assert status.scan_invoked(Transaction(db), 3) == [running]
    assert _unfinished(db, 3) == [running, waiting]
    assert not status.build_indexes(Transaction(db), 3)  # marked: never scanned again


def test_a_store_with_only_the_invoked_index_gets_the_unfinished_one(db: Database) -> None:
    running, waiting = bytes([7]) * 24, bytes([9]) * 24
    txn = Transaction(db)
    status.put(txn, 3, running, _status(Status.INVOKED))
    status.put(txn, 3, waiting, _status(Status.SUSPENDED))
    txn.put(keys.fsm(3, b"invoked_index"), keys.u64(1))  # what the previous version left
    for inv in (running, waiting):
        txn.delete(keys.unfinished(3, inv))
    txn.commit()
    txn = Transaction(db)
    assert status.build_indexes(txn, 3)
    txn.commit()
    assert _unfinished(db, 3) == [running, waiting]
    assert status.scan_invoked(Transaction(db), 3) == [running]


def test_large_results_are_kept_apart_from_the_status_row(db: Database) -> None:
    from restate_server.outcomes import Value

    inv = bytes([9]) * 24
    big = _status(Status.COMPLETED)
    big.result = Value(content=b"r" * (status.INLINE_RESULT + 1))
    txn = Transaction(db)
    status.put(txn, 2, inv, big)
    txn.commit()
    row = db.get(keys.status(2, inv))
    assert row is not None
    assert len(row) < status.INLINE_RESULT  # scans of the status table do not read the result
    assert status.get(Transaction(db), 2, inv) == big
    assert status.scan(Transaction(db), 2) == [(inv, big)]
    txn = Transaction(db)
    status.delete(txn, 2, inv)
    txn.commit()
    assert db.get(keys.result(2, inv)) is None
