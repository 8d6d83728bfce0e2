"""Invocation management through the admin API, on the real server with real SDK services."""

from __future__ import annotations

import httpx
import pytest
from harness import Server, wait_until

UNKNOWN = "inv_1gQhkFK9q6re0tgDk39FLbZJef9q126gA1"


def patch(server: Server, invocation_id: str, action: str) -> httpx.Response:
    return httpx.patch(f"{server.admin}/invocations/{invocation_id}/{action}", timeout=30)


def sleeping(server: Server) -> str:
    """A fresh invocation that sleeps ten minutes (it stays running or suspended)."""
    resp = server.call("Durable/sleep_ms/send", 600_000)
    assert resp.status_code == 202
    invocation_id = str(resp.json()["invocationId"])
    wait_until(lambda: status_of(server, invocation_id) in ("running", "suspended"))
    return invocation_id


def status_of(server: Server, invocation_id: str) -> str | None:
    resp = httpx.post(
        f"{server.admin}/query",
        headers={"accept": "application/json"},
        json={"query": f"SELECT status FROM sys_invocation WHERE id = '{invocation_id}'"},
        timeout=30,
    )
    rows = resp.json()["rows"]
    return str(rows[0]["status"]) if rows else None


def attach(server: Server, invocation_id: str) -> httpx.Response:
    return httpx.get(f"{server.ingress}/restate/invocation/{invocation_id}/attach", timeout=30)


def test_cancel_sleeping_invocation_then_purge(deployed: Server) -> None:
    invocation_id = sleeping(deployed)
    not_yet = patch(deployed, invocation_id, "purge")
    assert not_yet.status_code == 409
    assert not_yet.json() == {
        "message": f"The invocation '{invocation_id}' is not yet completed.",
        "restate_code": None,
    }

    cancelled = patch(deployed, invocation_id, "cancel")
    assert cancelled.status_code == 202
    assert cancelled.content == b""
    attached = attach(deployed, invocation_id)
    assert attached.status_code == 409
    assert attached.json() == {"code": 409, "message": "cancelled", "source": "invocation"}

    again = patch(deployed, invocation_id, "cancel")
    assert again.status_code == 409
    assert again.json()["message"] == f"The invocation '{invocation_id}' was already completed."

    purged = patch(deployed, invocation_id, "purge")
    assert purged.status_code == 200
    output = httpx.get(f"{deployed.ingress}/restate/invocation/{invocation_id}/output", timeout=30)
    assert output.status_code == 404
    assert output.json() == {"code": 404, "message": "invocation not found", "source": "ingress"}
    assert status_of(deployed, invocation_id) is None


def test_kill_ends_at_once(deployed: Server) -> None:
    invocation_id = sleeping(deployed)
    killed = patch(deployed, invocation_id, "kill")
    assert killed.status_code == 200
    attached = attach(deployed, invocation_id)
    assert attached.status_code == 409
    assert attached.json()["message"] == "killed"
    resumed = patch(deployed, invocation_id, "resume")
    assert resumed.status_code == 409
    assert resumed.json()["message"] == f"The invocation '{invocation_id}' is completed, cannot be resumed."


def test_resume_of_a_live_invocation_is_ok(deployed: Server) -> None:
    invocation_id = sleeping(deployed)
    assert patch(deployed, invocation_id, "resume").status_code == 200
    assert patch(deployed, invocation_id, "kill").status_code == 200


def test_deprecated_delete_appends_and_answers_202(deployed: Server) -> None:
    invocation_id = sleeping(deployed)
    resp = httpx.delete(f"{deployed.admin}/invocations/{invocation_id}", params={"mode": "Kill"}, timeout=30)
    assert resp.status_code == 202
    assert attach(deployed, invocation_id).json()["message"] == "killed"
    purge = httpx.delete(
        f"{deployed.admin}/invocations/{invocation_id}", params={"mode": "purge"}, timeout=30
    )
    assert purge.status_code == 202
    assert status_of(deployed, invocation_id) is None
    bad = httpx.delete(f"{deployed.admin}/invocations/{invocation_id}", params={"mode": "Nope"}, timeout=30)
    assert bad.status_code == 400
    assert bad.text.startswith("Failed to deserialize query string: mode: unknown variant `Nope`")


@pytest.mark.parametrize("action", ["cancel", "kill", "purge", "resume"])
def test_unknown_invocation_is_404(server: Server, action: str) -> None:
    resp = patch(server, UNKNOWN, action)
    assert resp.status_code == 404
    assert resp.json() == {
        "message": f"The requested invocation '{UNKNOWN}' does not exist",
        "restate_code": None,
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("inv_1nope", "bad length"),
        ("xyz", "bad format"),
        ("dp_14c9BKnu6yNaZscwg6B17yx", "id doesn't match the expected type"),
    ],
    ids=["short", "no-prefix", "other-kind"],
)
def test_malformed_invocation_id_is_400(server: Server, raw: str, reason: str) -> None:
    resp = patch(server, raw, "cancel")
    assert resp.status_code == 400
    assert resp.json() == {
        "message": f"The request field 'invocation_id' is invalid. Reason: {reason}",
        "restate_code": None,
    }


def test_scheduled_invocation_cannot_resume_and_cancels_at_once(deployed: Server) -> None:
    resp = deployed.call("Durable/record/send?delay=1h", "later")
    assert resp.status_code == 202
    invocation_id = resp.json()["invocationId"]
    assert status_of(deployed, invocation_id) == "scheduled"
    early = patch(deployed, invocation_id, "resume")
    assert early.status_code == 425
    assert early.json()["message"] == (
        f"The invocation '{invocation_id}' is either inboxed or scheduled, cannot be resumed."
    )
    assert patch(deployed, invocation_id, "cancel").status_code == 200  # done at once: no attempt to signal
    assert attach(deployed, invocation_id).json()["message"] == "cancelled"


def test_pause_then_resume_completes(deployed: Server) -> None:
    resp = deployed.call("Durable/sleep_ms/send", 1500)
    invocation_id = str(resp.json()["invocationId"])
    wait_until(lambda: status_of(deployed, invocation_id) in ("running", "suspended"))
    assert patch(deployed, invocation_id, "pause").status_code == 202
    assert status_of(deployed, invocation_id) == "paused"
    assert patch(deployed, invocation_id, "pause").status_code == 200
    assert patch(deployed, invocation_id, "resume").status_code == 200
    assert attach(deployed, invocation_id).json() == 1500
    late = patch(deployed, invocation_id, "pause")
    assert late.status_code == 409
    assert late.json()["message"] == f"The invocation '{invocation_id}' is not running, cannot be paused."
