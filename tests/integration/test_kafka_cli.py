"""The real `restate` CLI (npm @restatedev/restate 1.7.12) manages Kafka clusters through `/kafka-clusters`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from harness import Server

CLI = os.environ.get("TEST_RESTATE_CLI") or shutil.which("restate")
pytestmark = pytest.mark.skipif(CLI is None, reason="the restate CLI is not installed (set TEST_RESTATE_CLI)")


def _cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    assert CLI is not None
    env = {**os.environ, "RESTATE_ADMIN_URL": server.admin, "RESTATE_HOST": "127.0.0.1", "NO_COLOR": "1"}
    return subprocess.run(
        [CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_cli_creates_lists_describes_and_deletes_kafka_clusters(tmp_path: Path) -> None:
    config = tmp_path / "restate.toml"
    config.write_text(
        '[[ingress.kafka-clusters]]\nname = "from-config"\nbrokers = ["PLAINTEXT://127.0.0.1:9"]\n'
    )
    server = Server(
        base_dir=tmp_path / "data", log_path=tmp_path / "server.log", env={"RESTATE_CONFIG": str(config)}
    )
    server.start()
    try:
        empty_names = _cli(server, "kafka-clusters", "list")
        assert empty_names.returncode == 0, empty_names.stdout + empty_names.stderr
        assert "from-config" in empty_names.stdout

        created = _cli(
            server,
            "--yes",
            "kafka-clusters",
            "create",
            "orders",
            "bootstrap.servers=127.0.0.1:9",
            "sasl.password=pw",
        )
        assert created.returncode == 0, created.stdout + created.stderr
        stored = httpx.get(f"{server.admin}/kafka-clusters/orders", timeout=10).json()
        assert stored["properties"] == {"bootstrap.servers": "127.0.0.1:9", "sasl.password": "***"}

        listed = _cli(server, "kafka-clusters", "list")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert "orders" in listed.stdout
        assert "127.0.0.1:9" in listed.stdout

        described = _cli(server, "kafka-clusters", "describe", "orders")
        assert described.returncode == 0, described.stdout + described.stderr
        assert "bootstrap.servers" in described.stdout
        assert "pw" not in described.stdout.replace("sasl.password", "")

        deleted = _cli(server, "--yes", "kafka-clusters", "delete", "orders")
        assert deleted.returncode == 0, deleted.stdout + deleted.stderr
        assert httpx.get(f"{server.admin}/kafka-clusters/orders", timeout=10).status_code == 404
    finally:
        server.stop()
