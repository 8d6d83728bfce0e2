"""`POST /query` on the real server process with real SDK services: JSON, Arrow, errors, CLI queries.

The real `restate` CLI runs too when it is installed (``TEST_RESTATE_CLI`` names the binary, else
``restate`` on PATH; npm ``@restatedev/restate``); otherwise those tests are skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import httpx
import pyarrow as pa
import pytest
from harness import Sdk, Server, wait_until

CLI = os.environ.get("TEST_RESTATE_CLI") or shutil.which("restate")


def sql(server: Server, query: str, *, prefix: str = "") -> list[dict[str, Any]]:
    resp = httpx.post(
        f"{server.admin}{prefix}/query",
        json={"query": query},
        headers={"accept": "application/json"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    return list(resp.json()["rows"])


@pytest.fixture
def populated(server: Server, sdk: Sdk) -> dict[str, str]:
    """Registered services, a completed object call and a completed service call; their ids."""
    deployment = server.register(sdk.uri)["id"]
    add = server.call("Counter/q1/add", 7)
    greet = server.call("Greeter/greet", "Ada")
    assert add.status_code == greet.status_code == 200
    return {
        "deployment": deployment,
        "add": add.headers["x-restate-id"],
        "greet": greet.headers["x-restate-id"],
    }


def test_sys_invocation_lists_completed_calls(server: Server, populated: dict[str, str]) -> None:
    rows = sql(
        server,
        "SELECT id, target, status, completion_result, pinned_deployment_id FROM sys_invocation "
        "ORDER BY created_at",
    )
    assert rows == [
        {
            "id": populated["add"],
            "target": "Counter/q1/add",
            "status": "completed",
            "completion_result": "success",
            "pinned_deployment_id": populated["deployment"],
        },
        {
            "id": populated["greet"],
            "target": "Greeter/greet",
            "status": "completed",
            "completion_result": "success",
            "pinned_deployment_id": populated["deployment"],
        },
    ]


def test_state_reads_object_state(server: Server, populated: dict[str, str]) -> None:
    rows = sql(
        server, "SELECT service_name, service_key, key, value_utf8 FROM state WHERE service_key = 'q1'"
    )
    assert rows == [{"service_name": "Counter", "service_key": "q1", "key": "count", "value_utf8": "7"}]


def test_journal_of_an_invocation(server: Server, populated: dict[str, str]) -> None:
    rows = sql(
        server,
        f"SELECT index, entry_type, version FROM sys_journal WHERE id = '{populated['greet']}' "
        "ORDER BY index",
    )
    assert rows == [
        {"index": 0, "entry_type": "Command: Input", "version": 2},
        {"index": 1, "entry_type": "Command: Output", "version": 2},
    ]


def test_running_invocation_shows_in_state_table(server: Server, sdk: Sdk) -> None:
    server.register(sdk.uri)
    sent = server.call("Durable/sleep_ms/send", 600_000).json()["invocationId"]

    def running() -> list[dict[str, Any]]:
        return sql(
            server, f"SELECT status, retry_count, last_attempt_server FROM sys_invocation WHERE id = '{sent}'"
        )

    [row] = wait_until(lambda: [r for r in running() if r["status"] in ("running", "suspended")])
    assert row["status"] in ("running", "suspended")
    if row["status"] == "running":
        assert row["retry_count"] == 1
        assert row["last_attempt_server"].startswith("restate-sdk-python/")


def test_registry_tables(server: Server, populated: dict[str, str]) -> None:
    services = sql(
        server,
        "SELECT name, ty, deployment_id FROM sys_service WHERE name IN ('Counter', 'Greeter') ORDER BY name",
    )
    assert services == [
        {"name": "Counter", "ty": "virtual_object", "deployment_id": populated["deployment"]},
        {"name": "Greeter", "ty": "service", "deployment_id": populated["deployment"]},
    ]
    [deployment] = sql(server, "SELECT id, ty, endpoint FROM sys_deployment")
    assert deployment["id"] == populated["deployment"]
    assert deployment["ty"] == "http"


def test_arrow_stream_without_json_accept(server: Server, populated: dict[str, str]) -> None:
    resp = httpx.post(
        f"{server.admin}/v4/query", json={"query": "SELECT id, created_at FROM sys_invocation"}, timeout=30
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(resp.content).read_all()
    assert sorted(table.column("id").to_pylist()) == sorted([populated["add"], populated["greet"]])
    assert table.schema.field("created_at").type == pa.timestamp("ms", tz="+00:00")


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        (
            "SELECT nope FROM nowhere",
            500,
            "Datafusion error: Error during planning: table 'restate.public.nowhere' not found",
        ),
        (
            "SELEC 1",
            400,
            'Datafusion error: SQL error: ParserError("Expected: an SQL statement, found: SELEC at Line: 1, Column: 1")',
        ),
    ],
    ids=["unknown-table", "syntax"],
)
def test_sql_errors(server: Server, query: str, status: int, message: str) -> None:
    resp = httpx.post(f"{server.admin}/query", json={"query": query}, timeout=30)
    assert resp.status_code == status
    assert resp.json() == {"message": message}


def test_body_without_query_is_422(server: Server) -> None:
    resp = httpx.post(f"{server.admin}/query", json={}, timeout=30)
    assert resp.status_code == 422


CLI_QUERIES = [
    # restate services status
    """SELECT target_service_name, target_handler_name, status, COUNT(1) AS num_invocations,
       MIN(created_at) AS oldest_at, FIRST_VALUE(id ORDER BY created_at ASC) AS oldest_invocation
       FROM sys_invocation WHERE target_service_name IN ('Counter', 'Greeter')
       GROUP BY target_service_name, target_handler_name, status ORDER BY target_handler_name""",
    # restate invocations list (pre-1.5 form): a CTE right-joined with the deployments
    """WITH invocations AS (SELECT inv.id, inv.target, inv.status, inv.created_at, inv.pinned_deployment_id,
       inv.retry_count AS num_retries, inv.last_failure AS last_failure_message
       FROM sys_invocation inv WHERE inv.status != 'completed' ORDER BY inv.created_at DESC LIMIT 100)
       SELECT inv.*, dp.id IS NOT NULL AS pinned_deployment_exists
       FROM sys_deployment dp RIGHT JOIN invocations inv ON dp.id = inv.pinned_deployment_id""",
    # restate deployments list / the operator's drain check
    """SELECT COUNT(1) AS inv_count FROM sys_invocation_status
       WHERE pinned_deployment_id = 'dp_14c9BKnu6yNaZscwg6B17yx' AND status != 'completed'""",
    "SELECT * FROM sys_invocation WHERE to_timestamp(modified_at) <= now() - interval '1' hour",
    "SELECT arrow_cast(1, 'UInt32') AS x FROM sys_inbox GROUP BY service_name, service_key",
    "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'sys_journal' AND column_name = 'entry_json'",
    "SELECT id FROM sys_invocation WHERE target_service_name IN (SELECT name FROM sys_service WHERE ty = 'virtual_object')",
    # the operator's drain checks (operator/restate_operator/admin_client.py)
    "SELECT pinned_deployment_id AS deployment_id, COUNT(*) AS n FROM sys_invocation_status "
    "WHERE status != 'completed' AND pinned_deployment_id IS NOT NULL GROUP BY pinned_deployment_id",
    "SELECT target_service_name AS service, COUNT(*) AS n FROM sys_invocation_status "
    "WHERE status != 'completed' AND pinned_deployment_id IS NULL GROUP BY target_service_name",
]


def test_cli_queries_run(server: Server, populated: dict[str, str]) -> None:
    """One server for all of them: each would otherwise pay a process start-up."""
    for query in CLI_QUERIES:
        sql(server, query, prefix="/v4")
    [status_row] = sql(server, CLI_QUERIES[0] + " LIMIT 1")
    assert status_row["oldest_invocation"] == populated["add"]


def _cli(server: Server, *args: str) -> str:
    assert CLI is not None
    env = {
        **os.environ,
        "RESTATE_ADMIN_URL": server.admin,
        "RESTATE_INGRESS_URL": server.ingress,
        "NO_COLOR": "1",
        "TERM": "dumb",
    }
    done = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.skipif(CLI is None, reason="the restate CLI is not installed (set TEST_RESTATE_CLI)")
def test_real_cli_sql_and_listings(server: Server, populated: dict[str, str]) -> None:
    assert populated["greet"] in _cli(server, "sql", "SELECT id, target, status FROM sys_invocation")
    assert populated["add"] in _cli(server, "invocations", "list", "--all")
    described = _cli(server, "invocations", "describe", populated["add"])
    assert "Command: SetState" in described or "Counter/q1/add" in described
    assert "Counter" in _cli(server, "services", "status")
    assert populated["deployment"] in _cli(server, "deployments", "list")
    assert "count" in _cli(server, "kv", "get", "Counter", "q1")
