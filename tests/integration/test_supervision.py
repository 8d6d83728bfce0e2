"""Supervised tasks (issue 7.6): a crash is logged with its traceback, then restarted or fatal; /health
tells the truth.

Crashes are injected through the start-up-only test hook `RPY_TEST_FAULT`
(`restate_server/worker/fault_injection.py`) for the server process, and by monkeypatching a node
run in process for the `/health` checks.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from harness import Sdk, Server, free_port, wait_until
from restate_server.config import load_config
from restate_server.node import Node
from restate_server.tasks import Policy
from restate_server.worker.processor import PartitionProcessor

FAULT = "RPY_TEST_FAULT"


def test_processor_crash_stops_the_node_non_zero_and_the_replay_recovers(tmp_path: Path, sdk: Sdk) -> None:
    server = Server(
        base_dir=tmp_path / "data",
        log_path=tmp_path / "server.log",
        env={FAULT: "crash-processor-on-key=boom"},
    )
    server.start()
    try:
        server.register(sdk.uri)
        assert server.call("Counter/fine/add", 1).status_code == 200  # other keys are applied as usual
        with pytest.raises(httpx.HTTPError):
            server.call("Counter/boom/add/send", 5, timeout=30)  # its processor dies applying it
        assert server.proc is not None
        assert server.proc.wait(timeout=60) == 1
        log = server.log_path.read_text()
        assert "crashed; stopping the node" in log
        assert "Traceback (most recent call last)" in log
        assert "InjectedCrash: injected crash of partition" in log
        # restarted without the fault: the log is replayed and the durable Invoke runs
        server.env = {}
        server.start()
        wait_until(lambda: server.call("Counter/boom/get").json() == 5, timeout=30)
    finally:
        server.stop()


def test_timer_service_crash_is_logged_and_restarted(tmp_path: Path, sdk: Sdk) -> None:
    server = Server(
        base_dir=tmp_path / "data", log_path=tmp_path / "server.log", env={FAULT: "crash-timers-once"}
    )
    server.start()
    try:
        server.register(sdk.uri)
        resp = server.call("Durable/sleep_ms", 300, timeout=30)
        assert resp.status_code == 200
        assert resp.json() == 300  # the timer fired after the restart
        log = server.log_path.read_text()
        assert "task timer-service crashed; restarting it" in log
        assert "InjectedCrash: injected crash of the timer service" in log
        assert httpx.get(f"{server.admin}/health", timeout=5).status_code == 200
        assert server.proc is not None
        assert server.proc.poll() is None
    finally:
        server.stop()


async def test_health_is_503_on_every_port_while_a_processor_is_down_or_the_node_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ports = {name: free_port() for name in ("ingress", "admin", "node")}
    loaded, _ = load_config(
        ["--base-dir", str(tmp_path), "--node-name", "n1"],
        {
            "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ports['ingress']}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{ports['admin']}",
            "RESTATE_BIND_ADDRESS": f"127.0.0.1:{ports['node']}",
            "RESTATE_DEFAULT_NUM_PARTITIONS": "2",
        },
    )
    node = Node(loaded.config)
    await node.start()
    urls = [
        f"http://127.0.0.1:{ports['ingress']}/restate/health",
        f"http://127.0.0.1:{ports['admin']}/health",
        f"http://127.0.0.1:{ports['node']}/health",
    ]
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            assert [(await client.get(url)).status_code for url in urls] == [200, 200, 200]

            async def crash(self: PartitionProcessor) -> None:
                raise RuntimeError("processor bug")

            # partition 1's processor crashes (its task is started again on the broken method)
            monkeypatch.setattr(PartitionProcessor, "run", crash)
            await node.supervisor.cancel("partition-1")
            with caplog.at_level(logging.CRITICAL, logger="restate_server.tasks"):
                node.supervisor.spawn("partition-1", node.processors[1].run, Policy.FATAL)
                await asyncio.wait_for(node.failed.wait(), 5)
            assert "task partition-1 crashed; stopping the node" in caplog.text
            assert "RuntimeError: processor bug" in caplog.text
            unready = [await client.get(url) for url in urls]
            assert [r.status_code for r in unready] == [503, 503, 503]
            assert unready[0].json() == {"code": 503, "message": "the node is not ready", "source": "ingress"}
            assert unready[1].json()["message"] == "the node is not ready"
    finally:
        await node.stop()


async def test_health_is_503_once_a_processor_task_is_gone(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("ingress", "admin", "node")}
    loaded, _ = load_config(
        ["--base-dir", str(tmp_path), "--node-name", "n1"],
        {
            "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ports['ingress']}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{ports['admin']}",
            "RESTATE_BIND_ADDRESS": f"127.0.0.1:{ports['node']}",
            "RESTATE_DEFAULT_NUM_PARTITIONS": "2",
        },
    )
    node = Node(loaded.config)
    await node.start()
    try:
        assert node.ready()
        await node.supervisor.cancel("partition-0")  # no processor for partition 0
        assert not node.ready()
        async with httpx.AsyncClient(timeout=5) as client:
            resp = await client.get(f"http://127.0.0.1:{ports['node']}/health")
            assert resp.status_code == 503
    finally:
        await node.stop()
