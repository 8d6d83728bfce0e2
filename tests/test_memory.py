"""Freed heap memory goes back to the OS after large allocations (best effort, never an error)."""

from __future__ import annotations

import asyncio

from restate_server import memory


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
