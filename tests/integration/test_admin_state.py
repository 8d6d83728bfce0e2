"""`POST /services/{svc}/state` and the `restate state` commands built on it, against the real server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import restate_cli
from harness import Sdk, Server, wait_until


@pytest.fixture
def deployed(server: Server, sdk: Sdk) -> Server:
    """The services registered over h2c: these tests are about the admin API, not the transport."""
    server.register(sdk.uri)
    return server


def post_state(server: Server, service: str, body: Any) -> httpx.Response:
    return httpx.post(f"{server.admin}/services/{service}/state", json=body, timeout=30)


def state_of(server: Server, service: str, key: str) -> dict[str, str]:
    rows = server.query(
        f"SELECT key, value_utf8 FROM state WHERE service_name = '{service}' AND service_key = '{key}'"
    )
    return {row["key"]: row["value_utf8"] for row in rows}


def _add(server: Server, key: str, value: int) -> int:
    resp = server.call(f"Counter/{key}/add", value)
    assert resp.status_code == 200, resp.text
    return int(resp.json())


def test_state_is_replaced_and_a_stale_version_ignored(deployed: Server) -> None:
    assert _add(deployed, "k1", 5) == 5
    replaced = post_state(deployed, "Counter", {"object_key": "k1", "new_state": {"count": list(b"42")}})
    assert replaced.status_code == 202
    assert replaced.content == b""
    wait_until(lambda: state_of(deployed, "Counter", "k1") == {"count": "42"})
    assert deployed.call("Counter/k1/get").json() == 42

    stale = post_state(
        deployed, "Counter", {"object_key": "k1", "version": "stale", "new_state": {"count": list(b"0")}}
    )
    assert stale.status_code == 202
    assert _add(deployed, "k1", 1) == 43  # applied after the stale patch, on the same partition


def test_state_endpoint_refusals_are_upstreams(deployed: Server) -> None:
    plain = post_state(deployed, "Greeter", {"object_key": "k", "new_state": {}})
    assert plain.status_code == 400
    assert plain.json() == {"message": "Cannot modify state for service type Service", "restate_code": None}
    no_key = post_state(deployed, "Counter", {"new_state": {}})
    assert no_key.status_code == 422
    assert "missing field `object_key`" in no_key.text
    unknown = post_state(deployed, "Nope", {"object_key": "k", "new_state": {"a": [1]}})
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "The requested service 'Nope' does not exist"
    cleared_unknown = post_state(deployed, "Nope", {"object_key": "k", "new_state": {}})
    assert cleared_unknown.status_code == 202


def _editor(tmp_path: Path, new_state: dict[str, Any]) -> str:
    """An executable the CLI runs as its editor: it overwrites the file it is given."""
    script = tmp_path / "editor.py"
    script.write_text(
        f"import json, sys\nopen(sys.argv[1], 'w').write(json.dumps({json.dumps(new_state)}))\n"
    )
    wrapper = tmp_path / "editor"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def test_cli_state_get_edit_patch_and_clear(deployed: Server, tmp_path: Path) -> None:
    assert _add(deployed, "cli", 7) == 7
    got = restate_cli.run(deployed, "state", "get", "Counter", "cli", "--plain")
    assert got.returncode == 0, got.stdout + got.stderr
    assert "7" in got.stdout

    editor = _editor(tmp_path, {"count": 11, "extra": "x"})
    edited = restate_cli.run(
        deployed, "state", "edit", "Counter", "cli", "--yes", env={"RESTATE_EDITOR": editor}
    )
    assert edited.returncode == 0, edited.stdout + edited.stderr
    wait_until(lambda: state_of(deployed, "Counter", "cli") == {"count": "11", "extra": '"x"'})

    patch = json.dumps([{"op": "replace", "path": "/count", "value": 12}])
    patched = restate_cli.run(deployed, "kv", "patch", "Counter", "cli", "--patch", patch, "--yes")
    assert patched.returncode == 0, patched.stdout + patched.stderr
    wait_until(lambda: state_of(deployed, "Counter", "cli")["count"] == "12")
    assert deployed.call("Counter/cli/get").json() == 12

    cleared = restate_cli.run(deployed, "state", "clear", "Counter/cli", "--yes")
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr
    wait_until(lambda: state_of(deployed, "Counter", "cli") == {})


def test_cli_state_edit_of_a_plain_service_is_refused(deployed: Server) -> None:
    refused = restate_cli.run(deployed, "state", "get", "Greeter", "k")
    assert refused.returncode != 0
    assert "Only virtual objects and workflows support state" in refused.stdout + refused.stderr
