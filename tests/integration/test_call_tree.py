"""Calls between real SDK services: killing a parent kills the child it awaits; an unknown callee is RT0018."""

from __future__ import annotations

import httpx
from harness import Server, wait_until
from test_admin_invocations import attach, patch, status_of


def send(server: Server, path: str, body: object) -> str:
    resp = server.call(f"{path}/send", body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["invocationId"])


def child_of(server: Server, parent: str) -> str | None:
    rows = server.query(f"SELECT id FROM sys_invocation WHERE invoked_by_id = '{parent}'")
    return str(rows[0]["id"]) if rows else None


def test_killing_a_parent_kills_the_child_it_awaits(deployed: Server) -> None:
    parent = send(deployed, "Caller/await_sleeper", 600_000)
    child = wait_until(lambda: child_of(deployed, parent))
    wait_until(lambda: status_of(deployed, child) in ("running", "suspended"))
    assert patch(deployed, parent, "kill").status_code == 200
    assert attach(deployed, parent).json() == {"code": 409, "message": "killed", "source": "invocation"}
    killed = attach(deployed, child)
    assert killed.status_code == 409
    assert killed.json()["message"] == "killed"
    (row,) = deployed.query(f"SELECT status, completion_failure FROM sys_invocation WHERE id = '{child}'")
    assert row == {"status": "completed", "completion_failure": "[409] killed"}


def test_a_call_to_an_unregistered_service_fails_with_rt0018(deployed: Server) -> None:
    parent = send(deployed, "Caller/call_missing", "x")

    def failure() -> dict[str, object] | None:
        rows = deployed.query(
            f"SELECT status, last_failure_error_code, last_failure FROM sys_invocation WHERE id = '{parent}'"
        )
        return rows[0] if rows and rows[0].get("last_failure_error_code") else None

    row = wait_until(failure)
    assert row["last_failure_error_code"] == "RT0018"
    assert "the service handler Nowhere/go was not found" in str(row["last_failure"])
    assert row["status"] in ("backing-off", "running", "paused")
    assert child_of(deployed, parent) is None  # nothing was invoked: no retry loop on RT0011
    assert patch(deployed, parent, "kill").status_code == 200
    assert httpx.get(f"{deployed.ingress}/restate/health", timeout=10).status_code == 200
