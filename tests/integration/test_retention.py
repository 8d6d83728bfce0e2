"""Retention as upstream computes it: completed statuses kept, journals capped by the completion's retention."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import Sdk, Server


def _server(tmp_path: Path, sdk: Sdk, **env: str) -> Iterator[Server]:
    srv = Server(base_dir=tmp_path / "data", log_path=tmp_path / "server.log", env=env)
    srv.start()
    srv.register(sdk.uri)
    yield srv
    srv.stop()


@pytest.fixture
def no_journal(tmp_path: Path, sdk: Sdk) -> Iterator[Server]:
    yield from _server(tmp_path, sdk, RESTATE_DEFAULT_JOURNAL_RETENTION="0s")


@pytest.fixture
def short_idempotency(tmp_path: Path, sdk: Sdk) -> Iterator[Server]:
    yield from _server(
        tmp_path, sdk, RESTATE_DEFAULT_JOURNAL_RETENTION="2d", RESTATE_DEFAULT_IDEMPOTENCY_RETENTION="1h"
    )


def _row(server: Server, invocation_id: str) -> dict[str, object]:
    (row,) = server.query(
        "SELECT status, journal_size, completion_retention, journal_retention FROM sys_invocation"
        f" WHERE id = '{invocation_id}'"
    )
    return row


def test_without_journal_retention_the_completed_status_is_kept(no_journal: Server) -> None:
    called = no_journal.call("Greeter/greet", "kept")
    assert called.json() == "Hello kept!"
    inv = called.headers["x-restate-id"]
    assert _row(no_journal, inv) == {
        "status": "completed",
        "journal_size": 0,
        "completion_retention": "PT86400S",
        "journal_retention": "PT0S",
    }
    assert no_journal.query(f"SELECT index FROM sys_journal WHERE id = '{inv}'") == []
    output = httpx.get(f"{no_journal.ingress}/restate/output/{inv}", timeout=30)
    assert (output.status_code, output.json()) == (200, "Hello kept!")


def test_journal_retention_is_capped_by_idempotency_retention(short_idempotency: Server) -> None:
    idempotent = short_idempotency.call("Greeter/greet", "idem", headers={"idempotency-key": "k"})
    row = _row(short_idempotency, idempotent.headers["x-restate-id"])
    assert (row["completion_retention"], row["journal_retention"]) == ("PT3600S", "PT3600S")
    assert row["journal_size"] > 0
