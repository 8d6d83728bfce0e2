"""Fixtures for the admin API tests: real SDK endpoints and an admin app over a fresh registry."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from sdk_fixtures import SdkService, sdk_service, sdk_service_factory

__all__ = ["SdkService", "sdk_service", "sdk_service_factory"]
