"""Fixtures for schema tests (helpers live in ``schema_fixtures``)."""

from __future__ import annotations

from schema_fixtures import fake_discovery

__all__ = ["fake_discovery"]
