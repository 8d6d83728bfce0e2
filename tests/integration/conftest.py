"""Fixtures of the integration tests; the process harness lives in harness.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import deployed, pytest_runtest_makereport, sdk, server, side_effects

__all__ = ["deployed", "pytest_runtest_makereport", "sdk", "server", "side_effects"]
