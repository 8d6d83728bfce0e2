"""Fixtures of the worker tests: a node's worker over a memory log and a real store (worker_env)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
# the state machine's record builders and the invoker's virtual clock are shared, not copied
for _shared in (_HERE / "state_machine", _HERE.parent / "invoker", _HERE):
    if str(_shared) not in sys.path:
        sys.path.insert(0, str(_shared))

from worker_env import WorkerEnv  # noqa: E402


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[WorkerEnv]:
    env = WorkerEnv(tmp_path)
    await env.start()
    yield env
    await env.close()
