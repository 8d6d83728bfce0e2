"""`PATCH /invocations/{id}/restart-as-new` and `/purge-journal`, and the CLI's restart, on the real server."""

from __future__ import annotations

import httpx
import pytest
import restate_cli
from harness import Sdk, Server, wait_until
from test_admin_invocations import attach, patch, sleeping, status_of


@pytest.fixture
def deployed(server: Server, sdk: Sdk) -> Server:
    server.register(sdk.uri)
    return server


def completed(server: Server, path: str, body: object) -> str:
    resp = server.call(path, body)
    assert resp.status_code == 200, resp.text
    return resp.headers["x-restate-id"]


def restart(server: Server, invocation_id: str, query: str = "") -> httpx.Response:
    return httpx.patch(f"{server.admin}/invocations/{invocation_id}/restart-as-new{query}", timeout=30)


def journal_types(server: Server, invocation_id: str) -> list[str]:
    rows = server.query(f"SELECT entry_type FROM sys_journal WHERE id = '{invocation_id}' ORDER BY index")
    return [row["entry_type"] for row in rows]


def test_restart_runs_the_same_input_under_a_new_id(deployed: Server) -> None:
    old = completed(deployed, "Greeter/greet", "again")
    resp = restart(deployed, old)
    assert resp.status_code == 200, resp.text
    new = resp.json()["new_invocation_id"]
    assert list(resp.json()) == ["new_invocation_id"]
    assert new != old
    assert attach(deployed, new).json() == "Hello again!"
    (row,) = deployed.query(f"SELECT invoked_by, restarted_from FROM sys_invocation WHERE id = '{new}'")
    assert row == {"invoked_by": "restart_as_new", "restarted_from": old}


def test_restart_from_a_prefix_replays_it(deployed: Server) -> None:
    old = completed(deployed, "Durable/sleep_ms", 10)
    assert journal_types(deployed, old)[:3] == ["Command: Input", "Command: Sleep", "Notification: Sleep"]
    resp = restart(deployed, old, "?from=2&deployment=keep")
    assert resp.status_code == 200, resp.text
    new = resp.json()["new_invocation_id"]
    assert attach(deployed, new).json() == 10
    assert journal_types(deployed, new)[:3] == journal_types(deployed, old)[:3]


def test_restart_refusals(deployed: Server) -> None:
    running = sleeping(deployed)
    resp = restart(deployed, running)
    assert resp.status_code == 409
    assert resp.json() == {"message": f"The invocation '{running}' is still running.", "restate_code": None}
    bad_from = restart(deployed, running, "?from=x")
    assert bad_from.status_code == 400
    assert bad_from.text == "Failed to deserialize query string: from: invalid digit found in string"
    old = completed(deployed, "Greeter/greet", "x")
    unknown_dp = restart(deployed, old, "?deployment=dp_14c9BKnu6yNaZscwg6B17yx")
    assert unknown_dp.status_code == 400
    assert "The given deployment was not found" in unknown_dp.json()["message"]
    past = restart(deployed, old, "?from=40")
    assert past.status_code == 400


def test_purge_journal_keeps_the_status(deployed: Server) -> None:
    old = completed(deployed, "Greeter/greet", "gone")
    running = sleeping(deployed)
    not_yet = patch(deployed, running, "purge-journal")
    assert not_yet.status_code == 409
    assert not_yet.json()["message"] == f"The invocation '{running}' is not yet completed."

    purged = patch(deployed, old, "purge-journal")
    assert purged.status_code == 200
    assert purged.content == b""
    assert journal_types(deployed, old) == []
    assert status_of(deployed, old) == "completed"
    output = httpx.get(f"{deployed.ingress}/restate/invocation/{old}/output", timeout=30)
    assert output.json() == "Hello gone!"

    gone = restart(deployed, old)
    assert gone.status_code == 410
    assert "the input is not available" in gone.json()["message"]


def test_cli_restarts_a_completed_invocation(deployed: Server) -> None:
    old = completed(deployed, "Greeter/greet", "cli")
    done = restate_cli.run(deployed, "invocations", "restart-as-new", old, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = deployed.query(f"SELECT id FROM sys_invocation WHERE restarted_from = '{old}'")
    assert len(rows) == 1
    assert rows[0]["id"] in done.stdout
    wait_until(lambda: status_of(deployed, rows[0]["id"]) == "completed")
