"""Fixtures for the admin API tests: real SDK endpoints and an admin app over a fresh registry."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from admin_fixtures import Client, make_admin
from sdk_fixtures import sdk_service, sdk_service_any_transport, sdk_service_factory

__all__ = ["admin", "sdk_service", "sdk_service_any_transport", "sdk_service_factory"]


@pytest.fixture
async def admin() -> AsyncIterator[Client]:
    client = await make_admin()
    yield client
    await client.close()
