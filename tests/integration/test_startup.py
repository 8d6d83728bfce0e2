"""What the server process says and does at start-up: where it listens, configuration warnings, a busy port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import httpx
from harness import PYTHON, Server, free_port

UPSTREAM_DUMP = Path(__file__).resolve().parents[1] / "data" / "upstream-dump-config-1.7.12.toml"


def _lines(server: Server, needle: str) -> list[str]:
    return [line for line in server.log_path.read_text().splitlines() if needle in line]


def test_start_up_names_the_real_listen_addresses_and_the_data_dir(tmp_path: Path) -> None:
    server = Server(base_dir=tmp_path / "data", log_path=tmp_path / "server.log")
    server.env["RESTATE_BIND_ADDRESS"] = "127.0.0.1:0"  # the node port is chosen by the kernel
    server.start()
    try:
        assert _lines(server, f"Ingress HTTP listening on http://127.0.0.1:{server.ingress_port}")
        assert _lines(server, f"Admin API listening on http://127.0.0.1:{server.admin_port}")
        (node,) = _lines(server, "Node server listening on ")
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", node).group(1))  # type: ignore[union-attr]
        assert port != 0
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 200
        assert _lines(server, f"Data directory: {(tmp_path / 'data' / 'n1').resolve()}")
    finally:
        server.stop()


def test_a_busy_port_is_one_clear_line_and_exit_code_one(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{port}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{free_port()}",
            "RESTATE_BIND_ADDRESS": f"127.0.0.1:{free_port()}",
            "RESTATE_DEFAULT_NUM_PARTITIONS": "2",
        }
        done = subprocess.run(
            [PYTHON, "-m", "restate_server", "--base-dir", str(tmp_path), "--node-name", "n1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, done.stderr
    assert f"Ingress HTTP cannot listen on 127.0.0.1:{port}: Address already in use" in errors[0]
    assert "RESTATE_INGRESS__BIND_ADDRESS" in errors[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_unknown_restate_variables_are_ignored_with_one_warning(tmp_path: Path) -> None:
    server = Server(
        base_dir=tmp_path / "data",
        log_path=tmp_path / "server.log",
        env={
            "RESTATE_CONFIG_HOME": str(tmp_path / "cli"),  # the CLI's own variable: not a word about it
            "RESTATE_DEFAULT_NUM_PARTITION": "3",  # a typo
            "RESTATE_NOT_A_SERVER_KEY": "1",
        },
    )
    server.start()
    try:
        (warning,) = _lines(server, "Ignoring environment variables")
        assert "RESTATE_DEFAULT_NUM_PARTITION (did you mean 'default-num-partitions'?)" in warning
        assert "RESTATE_NOT_A_SERVER_KEY" in warning
        assert not _lines(server, "RESTATE_CONFIG_HOME")
    finally:
        server.stop()


def test_upstream_dump_config_runs_the_server(tmp_path: Path) -> None:
    """`restate-server --dump-config` of 1.7.12, as a configuration file of a running server."""
    server = Server(
        base_dir=tmp_path / "data",
        log_path=tmp_path / "server.log",
        env={"RESTATE_CONFIG": str(UPSTREAM_DUMP)},
    )
    server.start()
    try:
        assert httpx.get(f"{server.admin}/health", timeout=10).status_code == 200
        (warning,) = _lines(server, "have no effect in this server yet")
        unused = set(warning.split("yet: ", 1)[1].split(", "))
        assert "worker.storage.rocksdb-l0-num-compaction-trigger" in unused
        assert "bifrost.replicated-loglet.rpc-timeout" in unused
        used = {"cluster-name", "admin.disable-web-ui", "disable-prometheus", "worker.invoker.abort-timeout"}
        assert not used & unused
        assert httpx.get(f"{server.admin}/ui/", timeout=10).status_code == 200  # disable-web-ui = false
    finally:
        server.stop()
