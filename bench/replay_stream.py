"""Replay API streaming benchmark (not a test): a long state history through the real gRPC API of a real server.

Starts ``restate-py-server`` and the benchmark's SDK services on free loopback ports, writes
``--events`` history events (and a last marker) to one ``Counter`` key through the admin API's state
edits (concurrent ``POST /services/Counter/state``: each applied edit is one event), then streams the whole history
with ``restate_server.replay.client`` and reports the rate and how much the server's RSS grew while
it streamed (sampled every 20 ms from /proc). The issue's targets: >= 10,000 events/s, < 20 MB.

Run: ``.venv/bin/python -m bench.replay_stream [--events 200000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from restate_server.replay.client import ReplayClient

from bench import procs

KEY = "replay-bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _write_history(admin: str, events: int, writers: int) -> float:
    """``events`` admin edits of one key, ``writers`` at a time; returns edits per second."""
    queue = iter(range(events))
    started = time.perf_counter()

    async def writer(client: httpx.AsyncClient) -> None:
        for n in queue:
            body = {"object_key": KEY, "new_state": {"count": list(json.dumps({"n": n}).encode())}}
            response = await client.post(f"{admin}/services/Counter/state", json=body)
            response.raise_for_status()

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=writers)) as client:
        await asyncio.gather(*(writer(client) for _ in range(writers)))
        # one more, after every other edit was acknowledged: once it is in the history, all of them are
        marker = {"object_key": KEY, "new_state": {"done": list(b"true")}}
        (await client.post(f"{admin}/services/Counter/state", json=marker)).raise_for_status()
    return events / (time.perf_counter() - started)


def _marker_applied(node: str, since_ms: int) -> bool:
    with ReplayClient(node) as client:
        recent = client.replay(namespace="Counter", agent_id=KEY, start_ts=since_ms)
        return any(op.key == "done" for event in recent for op in event.operations)


def _stream(node: str) -> tuple[int, float]:
    with ReplayClient(node) as client:
        started = time.perf_counter()
        count = sum(1 for _ in client.replay(namespace="Counter", agent_id=KEY))
        return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--writers", type=int, default=64)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="replay-bench-"))
    ports = procs.Ports(ingress=_free_port(), admin=_free_port(), node=_free_port())
    spec = procs.ServerSpec(
        name="ours",
        argv=[sys.executable, "-m", "restate_server", "--base-dir", str(work / "data"), "--node-name", "n1"],
        ports=ports,
        extra_env={"RESTATE_LOG_FILTER": "warn"},
    )
    server = procs.Running(spec, work, work / "server.log")
    service_port = _free_port()
    sdk = subprocess.Popen(
        [sys.executable, "-m", "bench.services", "--port", str(service_port), "--prefix", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if server.wait_ready(60) is None:
            raise SystemExit(f"the server did not start; see {work / 'server.log'}")
        deadline = time.monotonic() + 30
        while not procs.http_ok(f"http://127.0.0.1:{service_port}/health") and time.monotonic() < deadline:
            time.sleep(0.1)
        httpx.post(
            f"{ports.admin_url}/deployments", json={"uri": f"http://127.0.0.1:{service_port}"}, timeout=30
        )
        write_rate = asyncio.run(_write_history(ports.admin_url, args.events, args.writers))
        node = f"127.0.0.1:{ports.node}"
        written_ms = int(time.time() * 1000) - 10_000
        while not _marker_applied(node, written_ms):
            time.sleep(0.5)  # the last edits are durable but maybe not applied yet
        rss_before = procs.rss_bytes(server.pid)
        peak = rss_before
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.02):
                peak = max(peak, procs.rss_bytes(server.pid))

        sampler = threading.Thread(target=sample, name="rss-sampler")
        sampler.start()
        server_cpu, client_cpu = procs.cpu_seconds(server.pid), time.process_time()
        try:
            count, elapsed = _stream(node)
        finally:
            done.set()
            sampler.join()
        server_cpu = procs.cpu_seconds(server.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        print(
            json.dumps(
                {
                    "events": count,
                    "seconds": round(elapsed, 2),
                    "events_per_s": round(count / elapsed),
                    "server_rss_before_mb": round(rss_before / 1e6, 1),
                    "server_rss_growth_mb": round((peak - rss_before) / 1e6, 1),
                    "server_cpu_share": round(server_cpu / elapsed, 2),
                    "client_cpu_share": round(client_cpu / elapsed, 2),
                    "history_write_rate_per_s": round(write_rate),
                },
                indent=2,
            )
        )
    finally:
        server.stop()
        sdk.kill()
        sdk.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
