"""A hostile deployment fails its own attempts, never the node (real server process, real discovery).

For each misbehaviour, over h2c (bidi) and HTTP/1.1 (request/response): the invocation shows the
upstream error code in `sys_invocation`, a real SDK service on the same server still answers, and
SIGTERM still shuts the server down cleanly. Retries are slowed down so that each test sees exactly
one attempt, and the give-up test uses a two-attempt policy.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Sdk, Server, wait_until
from hostile import SERVICE, STREAMED_AFTER_HEADER, HostileDeployment

RSS_GROWTH_BOUND = 200 * 2**20
SHUTDOWN_TIMEOUT = 10


@pytest.fixture
def hostile() -> Iterator[HostileDeployment]:
    deployment = HostileDeployment()
    deployment.start()
    yield deployment
    deployment.stop()


def _server(tmp_path: Path, **retry: str) -> Server:
    server = Server(base_dir=tmp_path / "data", log_path=tmp_path / "server.log")
    server.env.update(
        {
            "RESTATE_SHUTDOWN_TIMEOUT": f"{SHUTDOWN_TIMEOUT}s",
            "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS": retry.get("max_attempts", "3"),
            "RESTATE_DEFAULT_RETRY_POLICY__INITIAL_INTERVAL": retry.get("initial_interval", "1h"),
            "RESTATE_DEFAULT_RETRY_POLICY__MAX_INTERVAL": "1h",
            "RESTATE_DEFAULT_RETRY_POLICY__ON_MAX_ATTEMPTS": retry.get("on_max_attempts", "pause"),
        }
    )
    server.start()
    return server


@pytest.fixture
def slow_retries(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """One attempt per test: the first retry would come an hour later."""
    server = _server(tmp_path)
    yield server
    server.stop()
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(server.log_path.read_text()[-20000:])


def sql(server: Server, query: str) -> list[dict[str, Any]]:
    resp = httpx.post(
        f"{server.admin}/query", json={"query": query}, headers={"accept": "application/json"}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    return list(resp.json()["rows"])


def invocation(server: Server, invocation_id: str) -> dict[str, Any] | None:
    rows = sql(
        server,
        "SELECT status, retry_count, last_failure, last_failure_error_code, completion_failure"
        f" FROM sys_invocation WHERE id = '{invocation_id}'",
    )
    return rows[0] if rows else None


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def register(server: Server, hostile: HostileDeployment, sdk: Sdk, transport: str) -> None:
    server.register(hostile.uri, use_http_11=transport == "http1")
    server.register(sdk.uri)


def still_serving_and_stops_cleanly(server: Server) -> None:
    answer = server.call("Counter/after-hostile/add", 5)
    assert (answer.status_code, answer.json()) == (200, 5)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=SHUTDOWN_TIMEOUT + 10) == 0


@pytest.mark.parametrize("transport", ["h2c", "http1"])
@pytest.mark.parametrize(
    ("handler", "code", "message"),
    [
        ("garbage_state", "RT0012", "cannot decode message type SetStateCommand"),
        ("unknown_type", "RT0012", "received unexpected message: 0x0500"),
        ("oversized", "RT0003", f"hit message size limit: 3221225472 >= {32 * 2**20}"),
        ("redirect", "RT0006", "unexpected status code 307"),
    ],
    ids=["garbage-set-state", "unknown-type", "3gib-frame", "redirect-307"],
)
def test_misbehaviour_fails_the_attempt_not_the_node(
    slow_retries: Server,
    hostile: HostileDeployment,
    sdk: Sdk,
    transport: str,
    handler: str,
    code: str,
    message: str,
) -> None:
    server = slow_retries
    register(server, hostile, sdk, transport)
    assert server.proc is not None
    invocation(server, "inv_none")  # the first query loads the SQL engine: not part of the growth
    before = memory(server.proc.pid)
    sent = server.call(f"{SERVICE}/k/{handler}/send")
    assert sent.status_code == 202, sent.text
    invocation_id = sent.json()["invocationId"]
    row = wait_until(
        lambda: (r := invocation(server, invocation_id)) and r["last_failure_error_code"] and r, timeout=30
    )
    assert row["last_failure_error_code"] == code
    assert message in row["last_failure"]
    assert row["status"] != "completed"
    if handler == "oversized":
        after = memory(server.proc.pid)
        growth = after["VmHWM"] - before["VmRSS"]
        print(
            f"\n{transport}: server RSS {before['VmRSS'] >> 20} MiB before, peak {after['VmHWM'] >> 20} MiB"
            f" after ({growth >> 20} MiB growth); the deployment sent {hostile.streamed >> 20} of its"
            f" {STREAMED_AFTER_HEADER >> 20} MiB before it saw the server hang up"
        )
        assert growth < RSS_GROWTH_BOUND
    if handler == "redirect":
        assert hostile.redirect_hits == 0
    still_serving_and_stops_cleanly(server)


@pytest.mark.parametrize(("on_max", "status"), [("pause", "paused"), ("kill", "completed")])
def test_after_max_attempts_the_policy_decides(
    tmp_path: Path, hostile: HostileDeployment, sdk: Sdk, on_max: str, status: str
) -> None:
    server = _server(tmp_path, max_attempts="2", initial_interval="50ms", on_max_attempts=on_max)
    try:
        register(server, hostile, sdk, "h2c")
        invocation_id = server.call(f"{SERVICE}/k/garbage_state/send").json()["invocationId"]
        row = wait_until(lambda: (r := invocation(server, invocation_id)) and r["status"] == status and r)
        if on_max == "kill":
            assert "cannot decode message type SetStateCommand" in row["completion_failure"]
        still_serving_and_stops_cleanly(server)
    finally:
        server.stop()
