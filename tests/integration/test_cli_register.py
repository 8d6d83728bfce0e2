"""The real `restate` CLI (npm @restatedev/restate 1.7.12) registers and lists deployments."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from harness import Sdk, Server

CLI = os.environ.get("TEST_RESTATE_CLI") or shutil.which("restate")
pytestmark = pytest.mark.skipif(CLI is None, reason="the restate CLI is not installed (set TEST_RESTATE_CLI)")


def _cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    assert CLI is not None
    env = {**os.environ, "RESTATE_ADMIN_URL": server.admin, "RESTATE_HOST": "127.0.0.1", "NO_COLOR": "1"}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_cli_registers_lists_and_is_idempotent(server: Server, sdk: Sdk) -> None:
    done = _cli(server, "deployments", "register", sdk.uri, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    listed = _cli(server, "deployments", "list")
    assert sdk.uri in listed.stdout
    services = _cli(server, "services", "list").stdout
    assert "Counter" in services
    assert "virtual object" in services
    again = _cli(server, "deployments", "register", sdk.uri, "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(server.register(sdk.uri)) > 0
    assert server.call("Greeter/greet", "cli").json() == "Hello cli!"
