"""Hostile clients against the real server process: slow request heads, oversized bodies, unknown routes,
parser bombs, and error text meant to forge log lines. The server closes, refuses or escapes, and keeps
serving real SDK calls throughout."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from harness import Sdk, Server, free_port

HEADER_READ_TIMEOUT = 2.0  # seconds, set through the environment below
STALLED = 300
CLOSE_DEADLINE = 60.0  # seconds for every stalled connection to be closed; a bound, not a measurement
SIZE_LIMIT = 4096
CLI = os.environ.get("TEST_RESTATE_CLI") or shutil.which("restate")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a short header-read timeout and a small ingress body limit, the SDK registered.

    One for the module: every test here leaves it serving, which the tests check.
    """
    tmp_path = tmp_path_factory.mktemp("hostile")
    sdk = Sdk(
        port=free_port(), env={"SIDE_EFFECTS_FILE": str(tmp_path / "effects")}, log_path=tmp_path / "sdk.log"
    )
    server = Server(
        base_dir=tmp_path / "data",
        log_path=tmp_path / "server.log",
        env={
            "RESTATE_INGRESS__HEADER_READ_TIMEOUT": f"{HEADER_READ_TIMEOUT:g}s",
            "RESTATE_ADMIN__HEADER_READ_TIMEOUT": f"{HEADER_READ_TIMEOUT:g}s",
            "RESTATE_INGRESS__REQUEST_SIZE_LIMIT": str(SIZE_LIMIT),
        },
    )
    sdk.start()
    try:
        server.start()
        try:
            server.register(sdk.uri)
            yield server
        finally:
            server.stop()
    finally:
        sdk.stop()


def _ok(server: Server) -> None:
    assert server.call("Greeter/greet", "still-up").json() == "Hello still-up!"


def _stall(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST /Greeter/greet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: ")
    return sock


def _wait_closed(sock: socket.socket, deadline: float) -> bool:
    """True if the server closed ``sock`` (EOF or reset) before ``deadline``."""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


def test_stalled_request_heads_are_closed_and_calls_still_succeed(hostile: Server) -> None:
    opened = time.monotonic()
    stalled = [_stall(hostile.ingress_port if i % 3 else hostile.admin_port) for i in range(STALLED)]
    try:
        # real traffic is served while 300 connections hold half a request head each
        assert httpx.get(f"{hostile.ingress}/restate/health", timeout=30).status_code == 200
        assert httpx.get(f"{hostile.admin}/health", timeout=30).status_code == 200
        _ok(hostile)
        deadline = time.monotonic() + CLOSE_DEADLINE
        closed = [_wait_closed(sock, deadline) for sock in stalled]
        waited = time.monotonic() - opened
        print(f"{sum(closed)}/{STALLED} stalled connections closed by the server within {waited:.1f}s")
        assert all(closed)
    finally:
        for sock in stalled:
            sock.close()
    _ok(hostile)


def test_body_past_request_size_limit_is_413(hostile: Server) -> None:
    expected = {"code": 413, "message": "cannot read body: length limit exceeded", "source": "ingress"}
    big = b'"' + b"x" * (2 * SIZE_LIMIT) + b'"'
    declared = httpx.post(
        f"{hostile.ingress}/Greeter/greet",
        content=big,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert declared.status_code == 413
    assert declared.json() == expected
    assert declared.headers["x-restate-error-source"] == "ingress"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    chunked = httpx.post(
        f"{hostile.ingress}/Greeter/greet",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert chunked.status_code == 413
    assert chunked.json() == expected
    small = hostile.call("Greeter/greet", "x" * (SIZE_LIMIT // 2))
    assert small.status_code == 200
    _ok(hostile)


@pytest.mark.parametrize("path", ["/nope", "/v4/nope", "/deployments/dp_x/nope"], ids=["root", "v4", "deep"])
def test_unknown_admin_routes_answer_json(hostile: Server, path: str) -> None:
    resp = httpx.get(f"{hostile.admin}{path}", timeout=30)
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {
        "message": f"The requested route 'GET {path}' does not exist",
        "restate_code": None,
    }


@pytest.mark.skipif(CLI is None, reason="the restate CLI is not installed (set TEST_RESTATE_CLI)")
@pytest.mark.parametrize(
    ("args", "message"),
    [(["sql", "COPY (SELECT 1) TO '/tmp/restate-cli-copy.csv'"], "DML not supported: COPY")],
    ids=["refused-sql"],
)
def test_real_cli_prints_the_error_message(hostile: Server, args: list[str], message: str) -> None:
    """Error bodies in upstream's shape reach the user as a message (every route the CLI uses exists
    now, so an unknown one is checked at the HTTP level above)."""
    assert CLI is not None
    env = {**os.environ, "RESTATE_ADMIN_URL": hostile.admin, "NO_COLOR": "1", "TERM": "dumb"}
    done = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/", 400, "bad path: /"),
        ("/restate/nope", 404, "not found"),
        (
            "/restate/awakeables",
            400,
            "bad path, expected either /restate/awakeables/:id/resolve or /restate/awakeables/:id/reject",
        ),
    ],
    ids=["root", "restate", "bare"],
)
def test_unknown_ingress_routes_answer_json(hostile: Server, path: str, status: int, message: str) -> None:
    """Upstream's answers: a path with too few segments or a truncated API path is a 400."""
    resp = httpx.get(f"{hostile.ingress}{path}", timeout=30)
    assert resp.status_code == status
    assert resp.json() == {"code": status, "message": message, "source": "ingress"}


@pytest.mark.parametrize(
    "path", ["/deployments", "/query", "/subscriptions"], ids=["deployments", "query", "subs"]
)
def test_deeply_nested_json_to_admin_is_400(hostile: Server, path: str) -> None:
    resp = httpx.post(
        f"{hostile.admin}{path}",
        content=b"[" * 100_000,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert resp.status_code == 400
    assert resp.text == "Failed to parse the request body as JSON: recursion limit exceeded"
    _ok(hostile)


FORGED = "2026-01-01T00:00:00.000000Z  INFO restate_server: forged line"


class _HostileDiscovery(BaseHTTPRequestHandler):
    """A would-be deployment whose error body tries to forge a log line and colour the terminal."""

    def do_GET(self) -> None:
        body = f"denied\n{FORGED}\r\x1b[31mred\x1b[0m".encode()
        self.send_response(403)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_deployment_error_text_cannot_forge_log_lines(hostile: Server) -> None:
    httpd = HTTPServer(("127.0.0.1", free_port()), _HostileDiscovery)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{httpd.server_address[1]}"
        resp = httpx.post(f"{hostile.admin}/deployments", json={"uri": uri, "use_http_11": True}, timeout=60)
        assert resp.status_code == 500
        assert FORGED in resp.json()["message"]
    finally:
        httpd.shutdown()
    log = hostile.log_path.read_bytes()
    assert b"\x1b" not in log
    assert b"\r" not in log
    lines = log.decode().splitlines()
    assert not any(line.startswith(FORGED) for line in lines)
    assert any(f"denied\\n{FORGED}\\r\\x1b[31mred" in line for line in lines)
