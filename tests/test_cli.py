"""The `restate-py-server` entry point: exit codes, --dump-config, startup warning, SIGTERM."""

from __future__ import annotations

import importlib.metadata
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import types
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from ports import free_port
from restate_server import __main__ as entry
from restate_server.config import Config
from restate_server.observability import logging as log_setup


def _env(**extra: str) -> dict[str, str]:
    """The current environment without RESTATE_* or RUST_LOG, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTATE_") and k != "RUST_LOG"}
    env.update(extra)
    return env


def _run_module(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "restate_server", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else _env(),
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_dump_config_subprocess_exits_zero_with_toml(tmp_path: Path) -> None:
    result = _run_module(
        "--dump-config", "--cluster-name", "dumped", env=_env(RESTATE_INGRESS__BIND_ADDRESS="127.0.0.1:18080")
    )
    assert result.returncode == 0, result.stderr
    data = tomllib.loads(result.stdout)
    assert data["cluster-name"] == "dumped"
    assert data["ingress"]["bind-address"] == "127.0.0.1:18080"
    assert data["admin"]["bind-address"] == "0.0.0.0:9070"


def test_bad_config_subprocess_exits_one_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "restate.toml"
    config.write_text('[worker.invoker]\ninactivity-timout = "1m"\n')
    result = _run_module("--config-file", str(config), "--dump-config")
    assert result.returncode == 1
    assert "worker.invoker.inactivity-timout" in result.stderr
    assert "did you mean 'worker.invoker.inactivity-timeout'" in result.stderr
    assert result.stdout == ""


def test_bad_env_value_exits_one_naming_the_variable() -> None:
    result = _run_module("--dump-config", env=_env(RESTATE_WORKER__INVOKER__ABORT_TIMEOUT="forever"))
    assert result.returncode == 1
    assert "worker.invoker.abort-timeout" in result.stderr
    assert "RESTATE_WORKER__INVOKER__ABORT_TIMEOUT" in result.stderr


def test_main_dump_config_in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("RESTATE_") or k == "RUST_LOG"]:
        monkeypatch.delenv(name)
    assert entry.main(["--dump-config", "--log-format", "json"]) == 0
    assert tomllib.loads(capsys.readouterr().out)["log-format"] == "json"


def test_main_rejects_unknown_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        entry.main(["--no-such-flag"])
    assert info.value.code == 2  # usage errors exit 2, as clap does
    assert "--no-such-flag" in capsys.readouterr().err


def test_version_prints_the_installed_version_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        entry.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"restate-py-server {importlib.metadata.version('restate-py')}"


def test_main_runs_the_node_and_warns_about_unused_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [k for k in os.environ if k.startswith("RESTATE_") or k == "RUST_LOG"]:
        monkeypatch.delenv(name)
    seen: list[Config] = []

    async def run(config: Config) -> None:
        seen.append(config)

    _fake_node(monkeypatch, run)
    monkeypatch.setenv("RESTATE_ROLES", '["worker"]')
    monkeypatch.setenv("RESTATE_NOT_A_KEY", "1")
    config = tmp_path / "restate.toml"
    config.write_text('[bifrost]\nseal-retry-interval = "1s"\n')
    code = entry.main(
        ["-c", str(config), "--node-name", "n1", "--base-dir", str(tmp_path), "--log-format", "compact"]
    )
    assert code == 0
    assert [c.node_name for c in seen] == ["n1"]
    err = capsys.readouterr().err
    assert "bifrost.seal-retry-interval, roles" in err
    assert "WARN" in err
    ignored = [line for line in err.splitlines() if "RESTATE_NOT_A_KEY" in line]
    assert len(ignored) == 1
    assert "Ignoring environment variables" in ignored[0]


class _ListenError(Exception):
    pass


def _fake_node(monkeypatch: pytest.MonkeyPatch, run: Callable[[Config], Awaitable[None]]) -> None:
    fake = types.ModuleType("restate_server.node")
    fake.run = run  # type: ignore[attr-defined]
    fake.ListenError = _ListenError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "restate_server.node", fake)


def test_main_returns_one_when_the_node_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("RESTATE_") or k == "RUST_LOG"]:
        monkeypatch.delenv(name)

    async def run(config: Config) -> None:
        raise RuntimeError("cannot start")

    _fake_node(monkeypatch, run)
    assert entry.main(["--node-name", "n1"]) == 1


def test_main_reports_a_listen_error_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [k for k in os.environ if k.startswith("RESTATE_") or k == "RUST_LOG"]:
        monkeypatch.delenv(name)

    async def run(config: Config) -> None:
        raise _ListenError("[RT0004] Ingress HTTP cannot listen on 127.0.0.1:1: Address already in use")

    _fake_node(monkeypatch, run)
    assert entry.main(["--node-name", "n1", "--log-format", "compact"]) == 1
    err = capsys.readouterr().err
    assert "Address already in use" in err
    assert "Traceback" not in err


def _wait_for_port(port: int, proc: subprocess.Popen[str], deadline: float) -> bool:
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def test_sigterm_shuts_down_cleanly(tmp_path: Path) -> None:
    admin, ingress, node = free_port(), free_port(), free_port()
    env = _env(
        RESTATE_ADMIN__BIND_ADDRESS=f"127.0.0.1:{admin}",
        RESTATE_INGRESS__BIND_ADDRESS=f"127.0.0.1:{ingress}",
        RESTATE_BIND_ADDRESS=f"127.0.0.1:{node}",
        RESTATE_ADVERTISED_ADDRESS=f"http://127.0.0.1:{node}/",
        RESTATE_DEFAULT_NUM_PARTITIONS="2",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "restate_server", "--base-dir", str(tmp_path), "--node-name", "n1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert _wait_for_port(admin, proc, time.monotonic() + 60), "admin port never opened"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_configure_logging_splits_streams_and_applies_the_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # restored after the test
    monkeypatch.setattr(root, "level", root.level)
    out, err = io.StringIO(), io.StringIO()
    config = Config(node_name="n", log_filter="warn,restate_ingress_http=debug", log_format="json")
    log_setup.configure_logging(config, stdout=out, stderr=err)
    try:
        logging.getLogger("restate_server.ingress.http").debug("shown")
        logging.getLogger("restate_server.worker").info("hidden")
        logging.getLogger("restate_server.worker").warning("to stderr")
    finally:
        for name in ("restate_server.ingress",):
            logging.getLogger(name).setLevel(logging.NOTSET)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(entry["level"], entry["fields"]["message"]) for entry in lines] == [("DEBUG", "shown")]
    assert json.loads(err.getvalue())["fields"]["message"] == "to stderr"
