"""The `env` fixture: a fresh partition store per test (see sm_env.TestEnv)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sm_env import TestEnv


@pytest.fixture
def env(tmp_path: Path) -> Iterator[TestEnv]:
    test_env = TestEnv(tmp_path / "store")
    yield test_env
    test_env.close()
