"""The Replay API against the real server process: real SDK services change state, the real gRPC API
on the node port streams the history (through the node port's HTTP/2 pipe), SQL shows the same rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from harness import Sdk, Server, wait_until
from restate_server.replay.client import ReplayClient, event_json

BIG_EDITS = 600  # admin edits of 16 KiB each: several pages of history, far more than one HTTP/2 window


def _replay(server: Server, key: str, service: str = "Counter", **bounds: int) -> list[dict[str, Any]]:
    with ReplayClient(f"127.0.0.1:{server.node_port}") as client:
        return [event_json(e) for e in client.replay(namespace=service, agent_id=key, timeout=30, **bounds)]


def _rpc_error(server: Server, key: str, service: str = "Counter", **bounds: int) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        _replay(server, key, service, **bounds)
    return caught.value


def _metric(server: Server, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{server.node_port}/metrics", timeout=10).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match is not None, name
    return float(match.group(1))


def _add(server: Server, key: str, delta: int) -> str:
    response = server.call(f"Counter/{key}/add", delta)
    assert response.status_code == 200, response.text
    return response.headers["x-restate-id"]


def _op(key: str, value: Any, version: int) -> dict[str, Any]:
    return {"key": key, "value": None if value is None else {"value": float(value)}, "version": version}


@pytest.fixture
def fast_trim_server(tmp_path: Path) -> Iterator[Server]:
    """A server that sweeps for expired history every second."""
    srv = Server(
        base_dir=tmp_path / "data",
        log_path=tmp_path / "server.log",
        env={"RESTATE_WORKER__CLEANUP_INTERVAL": "1s"},
    )
    srv.start()
    yield srv
    srv.stop()


def test_counter_adds_and_a_clear_are_the_events_in_order(deployed: Server) -> None:
    ids = [_add(deployed, "alice", delta) for delta in (1, 2, 3)]
    reset = deployed.call("Counter/alice/reset")
    assert reset.status_code == 200
    events = _replay(deployed, "alice")
    assert [e["operations"] for e in events] == [
        [_op("count", 1, 1)],
        [_op("count", 3, 2)],
        [_op("count", 6, 3)],
        [_op("count", None, 4)],  # the clear: the key's value unset
    ]
    assert [e["txn_id"].split("/")[0] for e in events] == [*ids, reset.headers["x-restate-id"]]
    assert all(re.fullmatch(r"inv_\w+/\d+", e["txn_id"]) for e in events)
    times = [e["commit_ts"] for e in events]
    assert times == sorted(times)
    # bounds are inclusive milliseconds
    middle = _replay(deployed, "alice", start_ts=times[1], end_ts=times[2])
    assert middle == [e for e in events if times[1] <= e["commit_ts"] <= times[2]]
    assert _replay(deployed, "alice", start_ts=times[-1] + 1) == []
    assert _replay(deployed, "nobody") == []
    # SQL shows the same rows
    rows = deployed.query(
        "SELECT txn_id, key, version, value_utf8 FROM sys_state_history WHERE service_key = 'alice'"
        " ORDER BY log_position"
    )
    assert [(r["txn_id"], r["version"], r.get("value_utf8")) for r in rows] == [
        (e["txn_id"], e["operations"][0]["version"], v)
        for e, v in zip(events, ["1", "3", "6", None], strict=True)
    ]


def test_errors_are_grpc_status_codes(deployed: Server) -> None:
    assert _rpc_error(deployed, "k", service="Nope").code() == grpc.StatusCode.NOT_FOUND
    assert _rpc_error(deployed, "k", service="Greeter").code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _rpc_error(deployed, "k", start_ts=5, end_ts=4).code() == grpc.StatusCode.INVALID_ARGUMENT


def test_state_edits_through_the_admin_api_appear(deployed: Server) -> None:
    _add(deployed, "bob", 5)
    edit = httpx.post(
        f"{deployed.admin}/services/Counter/state",
        json={"object_key": "bob", "new_state": {"count": list(b"42"), "note": list(b'{"by": "admin"}')}},
        timeout=10,
    )
    assert edit.status_code == 202
    wait_until(lambda: len(_replay(deployed, "bob")) == 2)
    last = _replay(deployed, "bob")[-1]
    assert re.fullmatch(r"admin/\d+", last["txn_id"])
    assert last["operations"] == [
        {"key": "count", "value": {"value": 42.0}, "version": 2},
        {"key": "note", "value": {"by": "admin"}, "version": 1},
    ]
    assert deployed.call("Counter/bob/get").json() == 42


def test_history_survives_a_sigkill(server: Server, sdk: Sdk) -> None:
    server.register(sdk.uri)
    for delta in (10, 20):
        _add(server, "carol", delta)
    before = _replay(server, "carol")
    assert len(before) == 2
    server.kill()
    server.start()
    assert _replay(server, "carol") == before
    _add(server, "carol", 30)
    assert [e["operations"][0]["version"] for e in _replay(server, "carol")] == [1, 2, 3]


def test_an_early_cancel_releases_the_server(server: Server, sdk: Sdk) -> None:
    server.register(sdk.uri)
    value = list(b'"' + b"x" * 16_000 + b'"')
    with httpx.Client(timeout=10) as admin:
        for _ in range(BIG_EDITS):
            edit = admin.post(
                f"{server.admin}/services/Counter/state",
                json={"object_key": "big", "new_state": {"s": value}},
            )
            assert edit.status_code == 202
    wait_until(lambda: server.query("SELECT count(*) AS n FROM sys_state_history")[0]["n"] == BIG_EDITS)
    read_before = _metric(server, "restate_replay_events_read_total")
    with ReplayClient(f"127.0.0.1:{server.node_port}") as client:
        for event in client.replay(namespace="Counter", agent_id="big"):
            assert event.operations[0].version == 1
            break  # leaving the loop cancels the call
    wait_until(lambda: _metric(server, "restate_replay_streams") == 0)
    read = _metric(server, "restate_replay_events_read_total") - read_before
    assert 1 <= read < BIG_EDITS  # the server read what flow control let through, then stopped
    assert _metric(server, "restate_replay_events_read_total") - read_before == read


def test_retention_trims_and_zero_turns_history_off(fast_trim_server: Server, sdk: Sdk) -> None:
    server = fast_trim_server
    server.register(sdk.uri)
    _add(server, "dave", 1)
    first = _replay(server, "dave")[0]["commit_ts"]
    patched = httpx.patch(
        f"{server.admin}/services/Counter", json={"state_history_retention": "1s"}, timeout=10
    )
    assert patched.json()["state_history_retention"] == "1s"
    wait_until(lambda: _replay(server, "dave") == [], timeout=30)  # trimmed by the 1 s sweep
    error = _rpc_error(server, "dave", start_ts=first)
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE
    assert f"trimmed up to {first}" in (error.details() or "")
    httpx.patch(f"{server.admin}/services/Counter", json={"state_history_retention": "0s"}, timeout=10)

    def no_history_after_an_add() -> bool:
        """True once the partition applied the new retention: it removed the history and writes none."""
        _add(server, "erin", 1)
        return _replay(server, "erin") == []

    wait_until(no_history_after_an_add, timeout=30)
    _add(server, "erin", 1)
    assert _replay(server, "erin") == []  # and it stays off
    assert server.query("SELECT count(*) AS n FROM sys_state_history")[0]["n"] == 0
