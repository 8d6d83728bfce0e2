"""Fixtures of the snapshot tests; they live in snapshot_fixtures.py (a unique module name to import from)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from snapshot_fixtures import db, fresh_db, repository, s3_destination, s3_endpoint

__all__ = ["db", "fresh_db", "repository", "s3_destination", "s3_endpoint"]
