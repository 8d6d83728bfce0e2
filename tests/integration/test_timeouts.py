"""Inactivity timeout: a bidi attempt with nothing to do is asked to suspend, and resumes later."""

from __future__ import annotations

import httpx
import pytest
from harness import Sdk, Server, wait_until


@pytest.fixture
def short_inactivity(server: Server) -> Server:
    server.stop()
    server.env["RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT"] = "500ms"
    server.env["RESTATE_LOG_FILTER"] = "info,restate_server.worker=debug"
    server.start()
    return server


def test_idle_invocation_suspends_and_resumes(short_inactivity: Server, sdk: Sdk, side_effects) -> None:
    server = short_inactivity
    server.register(sdk.uri)
    invocation_id = server.call("Durable/await_awakeable/send").json()["invocationId"]
    line = wait_until(
        lambda: [x for x in side_effects.read_text().splitlines() if x.startswith("awakeable ")]
    )
    awakeable_id = line[0].split()[1]
    # after the inactivity timeout the server closes its side and the SDK suspends: kill the SDK to
    # prove the resume needs no live attempt, then bring it back for the re-invocation
    wait_until(
        lambda: (
            server.query(f"SELECT status FROM sys_invocation WHERE id = '{invocation_id}'")
            == [{"status": "suspended"}]
        ),
        timeout=10,
    )
    sdk.kill()
    sdk.start()
    resp = httpx.post(f"{server.ingress}/restate/awakeables/{awakeable_id}/resolve", json="later")
    assert resp.status_code == 202
    result = httpx.get(f"{server.ingress}/restate/invocation/{invocation_id}/attach", timeout=30)
    assert result.json() == "resolved with later"
