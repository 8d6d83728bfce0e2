"""Runs the real `restate` CLI (npm @restatedev/restate 1.7.12) against a test server."""

from __future__ import annotations

import os
import shutil
import subprocess

from harness import Server

CLI = os.environ.get("TEST_RESTATE_CLI") or shutil.which("restate")


def run(server: Server, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI's result; `--yes` is the caller's to pass where a command asks for confirmation."""
    assert CLI is not None, "the restate CLI is not installed (set TEST_RESTATE_CLI)"
    cli_env = {
        **os.environ,
        "RESTATE_ADMIN_URL": server.admin,
        "RESTATE_HOST": "127.0.0.1",
        "NO_COLOR": "1",
        **(env or {}),
    }
    return subprocess.run([CLI, *args], env=cli_env, capture_output=True, text=True, timeout=60, check=False)
