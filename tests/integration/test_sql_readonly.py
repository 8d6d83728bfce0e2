"""`POST /query` on the real server: statements that are not queries are refused and write nothing, and a
memory-hungry query fails with an answer instead of growing the process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import Server

MiB = 1024 * 1024
RSS_GROWTH_BOUND = 600 * MiB
HUNGRY = "SELECT * FROM generate_series(1, 40000000) ORDER BY 1 DESC"


def _query(server: Server, sql: str) -> httpx.Response:
    return httpx.post(
        f"{server.admin}/query", json={"query": sql}, headers={"accept": "application/json"}, timeout=120
    )


@pytest.fixture
def copy_target(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "copied.csv"
    yield target
    assert not target.exists(), "a refused COPY wrote its file"


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1 AS x) TO '{target}'",
        "COPY (SELECT * FROM sys_invocation) TO '{target}' STORED AS PARQUET",
        "EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{target}'",
        "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '{target}'",
        "CREATE TABLE t AS SELECT 1",
        "CREATE VIEW v AS SELECT 1",
        "INSERT INTO sys_service SELECT * FROM sys_service",
        "DELETE FROM sys_service",
        "UPDATE sys_service SET name = 'x'",
        "DROP VIEW sys_invocation",
        "SET datafusion.execution.batch_size = 1",
    ],
    ids=[
        "copy",
        "copy-parquet",
        "explain-analyze-copy",
        "create-external-table",
        "create-table",
        "create-view",
        "insert",
        "delete",
        "update",
        "drop-view",
        "set",
    ],
)
def test_statements_that_are_not_queries_get_400(server: Server, copy_target: Path, sql: str) -> None:
    resp = _query(server, sql.format(target=copy_target))
    assert resp.status_code == 400, resp.text
    message = resp.json()["message"]
    assert message.startswith("Datafusion error: ")
    assert message.endswith("/query runs read-only queries only")
    # the engine's own view is untouched and queries still run
    after = _query(server, "SELECT count(*) AS n FROM sys_invocation")
    assert after.status_code == 200, after.text
    assert after.json() == {"rows": [{"n": 0}]}


def _memory(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def _reset_peak(pid: int) -> bool:
    """Start VmHWM afresh (Linux `clear_refs` 5); False where the kernel does not allow it."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def test_memory_hungry_query_fails_cleanly_and_rss_stays_bounded(server: Server) -> None:
    assert server.proc is not None
    pid = server.proc.pid
    assert _query(server, "SELECT 1 AS warm").status_code == 200  # loads DataFusion before measuring
    before = _memory(pid)["VmRSS"]
    if not _reset_peak(pid):
        pytest.skip("cannot reset the peak RSS of the server process here")
    resp = _query(server, HUNGRY)
    peak = _memory(pid)["VmHWM"]
    print(f"RSS before {before / MiB:.0f} MiB, peak during the query {peak / MiB:.0f} MiB")
    assert resp.status_code == 500, resp.text[:500]
    assert "Resources exhausted" in resp.json()["message"]
    assert peak - before < RSS_GROWTH_BOUND
    assert _query(server, "SELECT 1 AS still").json() == {"rows": [{"still": 1}]}
