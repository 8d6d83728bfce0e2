"""Freed heap memory goes back to the OS after large allocations (best effort, never an error)."""

from __future__ import annotations

import asyncio

from restate_server import memory


def test_trim_runs_where_there_is_glibc_and_is_harmless_elsewhere() -> None:
    memory.trim()


async def test_trim_soon_schedules_one_trim_however_often_it_is_asked(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls: list[int] = []
    monkeypatch.setattr(memory, "DELAY", 0.01)
    monkeypatch.setattr(memory, "trim", lambda: calls.append(1))
    for _ in range(5):
        memory.trim_soon()
    deadline = asyncio.get_running_loop().time() + 5
    while not calls and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert calls == [1]
