"""Repository-wide pytest hooks.

Under `CI=true` a skipped test is a failed test: CI installs every tool the suites use (kubectl, npm
packages, etcd, the Kafka broker), so a skip there means an install broke, and a green run must not hide
that (issue: "in CI a missing tool is a failure, never a silent skip").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if _CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true (a required tool is missing?): {reason}"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse two test modules with one basename: the test directories are not packages, so pytest
    imports both as the same module and the whole run stops at collection (a CI run was lost to it)."""
    seen: dict[str, str] = {}
    for root in ("tests", "e2e"):
        for path in sorted(Path(session.config.rootpath, root).rglob("test_*.py")):
            other = seen.setdefault(path.name, str(path))
            if other != str(path):
                raise pytest.UsageError(f"two test modules named {path.name}: {other} and {path}")
