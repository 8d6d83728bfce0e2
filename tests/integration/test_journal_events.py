"""`sys_journal_events` on the real server: transient errors of retried attempts, and pauses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Sdk, Server, wait_until
from test_admin_invocations import patch


@pytest.fixture
def paused_after_two(tmp_path: Path, sdk: Sdk) -> Iterator[Server]:
    """A server that pauses an invocation after two failed attempts, one second apart."""
    srv = Server(
        base_dir=tmp_path / "data",
        log_path=tmp_path / "server.log",
        env={
            "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS": "2",
            "RESTATE_DEFAULT_RETRY_POLICY__INITIAL_INTERVAL": "1s",
            "RESTATE_DEFAULT_RETRY_POLICY__ON_MAX_ATTEMPTS": "pause",
        },
    )
    srv.start()
    srv.register(sdk.uri)
    yield srv
    srv.stop()


def events_of(server: Server, invocation_id: str) -> list[dict[str, object]]:
    return server.query(
        "SELECT event_type, event_json, after_journal_entry_index FROM sys_journal_events"
        f" WHERE id = '{invocation_id}' ORDER BY appended_at"
    )


def test_a_retried_failure_and_the_pause_are_recorded(paused_after_two: Server) -> None:
    server = paused_after_two
    resp = server.call("Greeter/flaky/send", "ev")
    inv = resp.json()["invocationId"]
    wait_until(
        lambda: [e["event_type"] for e in events_of(server, inv)] == ["TransientError", "Paused"], timeout=60
    )
    transient, paused = events_of(server, inv)
    failure = json.loads(str(transient["event_json"]))
    assert failure["ty"] == "TransientError"
    assert failure["restate_doc_error_code"] == "RT0007"
    assert "flaky failure of ev" in failure["error_message"]
    assert json.loads(str(paused["event_json"]))["last_failure"]["restate_doc_error_code"] == "RT0007"
    assert transient["after_journal_entry_index"] == 0
    (row,) = server.query(f"SELECT status FROM sys_invocation WHERE id = '{inv}'")
    assert row["status"] == "paused"


def test_a_manual_pause_is_recorded_without_a_failure(deployed: Server) -> None:
    resp = deployed.call("Durable/sleep_ms/send", 600_000)
    inv = resp.json()["invocationId"]
    wait_until(lambda: patch(deployed, inv, "pause").status_code in (200, 202))
    wait_until(lambda: any(e["event_type"] == "Paused" for e in events_of(deployed, inv)))
    assert {"event_type": "Paused", "event_json": '{"ty":"Paused"}'} in [
        {k: e[k] for k in ("event_type", "event_json")} for e in events_of(deployed, inv)
    ]
