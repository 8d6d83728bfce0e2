"""Repository-wide pytest hooks.

Under `CI=true` a skipped test is a failed test: CI installs every tool the suites use (kubectl, npm
packages, etcd, the Kafka broker), so a skip there means an install broke, and a green run must not hide
that (issue: "in CI a missing tool is a failure, never a silent skip").
"""

from __future__ import annotations

import os
from collections.abc import Iterator

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
