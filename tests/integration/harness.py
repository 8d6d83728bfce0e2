"""Fixtures that start the real server process and real restate-sdk services on loopback.

Every process gets free ports on 127.0.0.1 and is stopped at teardown (SIGTERM, then SIGKILL after a
deadline). Waits poll a condition with a deadline; no fixed sleeps decide an outcome.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from ports import free_port

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def wait_until(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the thing may not be up yet
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s (last error: {last_error})")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Server:
    """The restate-py-server process; `kill()` and `start()` keep the data directory."""

    base_dir: Path
    log_path: Path
    ingress_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    node_port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    node_name: str = "n1"
    host: str = "127.0.0.1"
    """The address the server binds and is called on (a network namespace's, in partition tests)."""
    launcher: tuple[str, ...] = ()
    """A command prefix the server runs under (e.g. `ip netns exec <namespace>`)."""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ingress(self) -> str:
        return f"http://{self.host}:{self.ingress_port}"

    @property
    def admin(self) -> str:
        return f"http://{self.host}:{self.admin_port}"

    def start(self, *, wait: bool = True) -> None:
        env = {
            **os.environ,
            "RESTATE_INGRESS__BIND_ADDRESS": f"{self.host}:{self.ingress_port}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"{self.host}:{self.admin_port}",
            "RESTATE_BIND_ADDRESS": f"{self.host}:{self.node_port}",
            "RESTATE_DEFAULT_NUM_PARTITIONS": "8",
            "RESTATE_LOG_FILTER": "info",
            **self.env,
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                *self.launcher,
                PYTHON,
                "-m",
                "restate_server",
                "--base-dir",
                str(self.base_dir),
                "--node-name",
                self.node_name,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        # generous: a loaded 2-core machine can take long to import and open everything
        wait_until(lambda: httpx.get(f"{self.admin}/health", timeout=1).status_code == 200, timeout=60)
        wait_until(
            lambda: httpx.get(f"{self.ingress}/restate/health", timeout=1).status_code == 200, timeout=60
        )

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def register(self, uri: str, **extra: Any) -> dict[str, Any]:
        resp = httpx.post(f"{self.admin}/deployments", json={"uri": uri, **extra}, timeout=30)
        assert resp.status_code in (200, 201), resp.text
        return dict(resp.json())

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows of a `POST /query` answer (JSON)."""
        resp = httpx.post(
            f"{self.admin}/query", json={"query": sql}, headers={"accept": "application/json"}, timeout=30
        )
        assert resp.status_code == 200, resp.text
        return list(resp.json()["rows"])

    def journaled(self, handler: str, entry_type: str) -> bool:
        """True once an invocation of `handler` has an entry of `entry_type` (e.g. `Command: Sleep`)."""
        rows = self.query(
            "SELECT j.id FROM sys_journal j JOIN sys_invocation i ON j.id = i.id"
            f" WHERE i.target_handler_name = '{handler}' AND j.entry_type = '{entry_type}'"
        )
        return bool(rows)

    def call(self, path: str, body: Any = None, *, timeout: float = 30, **kwargs: Any) -> httpx.Response:
        content = None if body is None else json.dumps(body)
        headers = {"content-type": "application/json"} if body is not None else {}
        headers.update(kwargs.pop("headers", {}))
        return httpx.post(
            f"{self.ingress}/{path}", content=content, headers=headers, timeout=timeout, **kwargs
        )


@dataclass
class Sdk:
    """The integration services under hypercorn."""

    port: int
    env: dict[str, str]
    log_path: Path
    host: str = "127.0.0.1"
    ca: Path | None = None
    """With TLS (``SERVE_CERTFILE`` and ``SERVE_KEYFILE`` in ``env``): the CA that signed the certificate."""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"{'http' if self.ca is None else 'https'}://{self.host}:{self.port}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [PYTHON, str(HERE / "serve.py"), str(self.port), self.host],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        verify: ssl.SSLContext | bool = (
            True if self.ca is None else ssl.create_default_context(cafile=self.ca)
        )
        health = f"{self.uri}/health"
        wait_until(lambda: httpx.get(health, timeout=1, verify=verify).status_code == 200, timeout=30)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, timeout=5)


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    srv = Server(base_dir=tmp_path / "data", log_path=tmp_path / "server.log")
    srv.start()
    yield srv
    srv.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(srv.log_path.read_text()[-20000:])


@pytest.fixture
def side_effects(tmp_path: Path) -> Path:
    path = tmp_path / "side-effects.txt"
    path.touch()
    return path


@pytest.fixture
def sdk(tmp_path: Path, side_effects: Path) -> Iterator[Sdk]:
    service = Sdk(
        port=free_port(), env={"SIDE_EFFECTS_FILE": str(side_effects)}, log_path=tmp_path / "sdk.log"
    )
    service.start()
    yield service
    service.stop()


@pytest.fixture(params=["h2c", "http1"])
def deployed(request: pytest.FixtureRequest, server: Server, sdk: Sdk) -> Server:
    """The server with the integration services registered over h2c (bidi) or HTTP/1.1."""
    server.register(sdk.uri, use_http_11=request.param == "http1")
    return server


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, "rep_" + report.when, report)
