"""Freed heap memory goes back to the OS after large allocations (best effort, never an error)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from restate_server import memory
from restate_server.rocksdb import Database
from restate_server.storage.transaction import Transaction


def test_trim_runs_where_there_is_glibc_and_is_harmless_elsewhere() -> None:
    memory.trim()


def test_a_request_is_served_once_it_is_old_enough_and_requests_meanwhile_add_nothing() -> None:
    memory._take_due_request(float("inf"))  # whatever an earlier test left pending
    memory.trim_soon()
    memory.trim_soon()
    now = time.monotonic()
    assert not memory._take_due_request(now)
    assert memory._take_due_request(now + memory.DELAY)
    assert not memory._take_due_request(now + memory.DELAY)  # served
    memory.trim_soon()  # a later request starts anew
    assert memory._take_due_request(time.monotonic() + memory.DELAY)


def test_the_releaser_trims_when_the_heap_frees_a_lot_since_its_lowest(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    free = [100 << 20]
    monkeypatch.setattr(memory, "free_heap_bytes", lambda: free[0])
    releaser = memory.Releaser()
    free[0] = 60 << 20  # memory taken from the free lists again
    assert not releaser.heap_grew()
    free[0] = (60 << 20) + memory.HEAP_GROWTH - 1  # freed again, not quite enough above the low
    assert not releaser.heap_grew()
    free[0] = (60 << 20) + memory.HEAP_GROWTH
    assert releaser.heap_grew()


async def test_the_releaser_runs_requested_trims_with_the_holders_and_others_without(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    trims: list[bool] = []
    free = [0]
    monkeypatch.setattr(memory, "CHECK_INTERVAL", 0.01)
    monkeypatch.setattr(memory, "DELAY", 0.02)
    monkeypatch.setattr(memory, "free_heap_bytes", lambda: free[0])
    monkeypatch.setattr(memory, "trim", lambda release_holders=True: trims.append(release_holders))
    task = asyncio.create_task(memory.Releaser().run())
    try:
        memory.trim_soon()
        await _until(lambda: trims == [True])
        await asyncio.sleep(0.05)  # the releaser notes the heap after its trim
        free[0] = memory.HEAP_GROWTH  # freed by someone who did not ask
        await _until(lambda: trims == [True, False])
        await asyncio.sleep(0.05)
        assert trims == [True, False]  # the low moved up with the trim: nothing more to do
    finally:
        task.cancel()


async def _until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not check():  # noqa: ASYNC110  # the trims happen in a worker thread
            await asyncio.sleep(0.005)


def test_a_large_store_write_asks_for_a_trim(tmp_path: Path) -> None:
    memory._take_due_request(float("inf"))
    db = Database(tmp_path / "db")
    try:
        txn = Transaction(db)
        txn.put(b"small", b"x")
        txn.commit()
        assert not memory._take_due_request(float("inf"))
        txn = Transaction(db)
        txn.put(b"large", b"x" * memory.LARGE_WRITE_BYTES)
        txn.commit()
        assert memory._take_due_request(float("inf"))
    finally:
        db.close()


class _Holder:
    def __init__(self, fails: bool) -> None:
        self.released = 0
        self.fails = fails

    def release_memory(self) -> None:
        self.released += 1
        if self.fails:
            raise OSError("No space left on device")


def test_trim_asks_every_holder_to_let_go_first_even_when_one_fails() -> None:
    broken, fine = _Holder(fails=True), _Holder(fails=False)
    memory.hold(broken)
    memory.hold(fine)
    memory.trim()
    assert (broken.released, fine.released) == (1, 1)


def test_a_store_asked_to_release_memory_moves_its_last_large_value_out_of_the_memtable(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "db")
    try:
        txn = Transaction(db)
        txn.put(b"large", b"x" * (8 << 20))
        txn.commit()
        in_memtable = db.property_int("rocksdb.cur-size-all-mem-tables")
        assert in_memtable is not None
        assert in_memtable > 8 << 20
        db.release_memory()
        assert (db.property_int("rocksdb.cur-size-all-mem-tables") or 0) < 1 << 20
        assert db.get(b"large") == b"x" * (8 << 20)
    finally:
        db.close()
    db.release_memory()  # closed: nothing to flush, no error
