"""Fixtures of the integration tests; the process harness lives in harness.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster_harness import cluster, deployed_cluster
from harness import deployed, pytest_runtest_makereport, sdk, server, side_effects

__all__ = [
    "cluster",
    "deployed",
    "deployed_cluster",
    "pytest_runtest_makereport",
    "sdk",
    "server",
    "side_effects",
]
