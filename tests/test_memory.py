"""Freed heap memory goes back to the OS after large allocations (best effort, never an error)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from restate_server import memory
from restate_server.rocksdb import Database
from restate_server.storage.transaction import Transaction


def test_trim_runs_where_there_is_glibc_and_is_harmless_elsewhere() -> None:
    memory.trim()


async def test_trim_soon_schedules_one_trim_however_often_it_is_asked(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls: list[int] = []
    trimmed = asyncio.Event()
    loop = asyncio.get_running_loop()

    def fake_trim() -> None:
        calls.append(1)
        loop.call_soon_threadsafe(trimmed.set)

    monkeypatch.setattr(memory, "DELAY", 0.01)
    monkeypatch.setattr(memory, "trim", fake_trim)
    for _ in range(5):
        memory.trim_soon()
    await asyncio.wait_for(trimmed.wait(), 5)
    assert calls == [1]
    memory.trim_soon()  # a later request schedules the next one
    trimmed.clear()
    await asyncio.wait_for(trimmed.wait(), 5)
    assert calls == [1, 1]


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
