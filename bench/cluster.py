"""Cluster figures for the closing note: throughput of 3 nodes vs 1, and etcd's size over a long run.

Not a test. Everything runs on loopback: a 3-member etcd (Debian's `etcd`), the bench's SDK services,
and this server, either as one node or as three nodes of one cluster (replication 2). The load is the
bench's closed loop (`bench/load.py`) calling `Greeter.greet` at a fixed concurrency; against the
cluster, each worker talks to one of the three ingresses in turn, so every node forwards requests for
partitions it does not lead.

    .venv/bin/python -m bench.cluster throughput --seconds 20 --concurrency 32
    .venv/bin/python -m bench.cluster soak --seconds 600      # etcd DB size every 30 s (snapshots on)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from restate_server import etcd

from bench import load, procs

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PARTITIONS = 8


def _etcd_module() -> Any:
    """`tests/etcd_cluster.py` (tests/ is not a package; it imports `ports` from there too)."""
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    return importlib.import_module("etcd_cluster")


def _free_port() -> int:
    return int(_etcd_module().free_port())


class Node:
    def __init__(self, name: str, base: Path, env: dict[str, str]) -> None:
        self.name = name
        self.ingress, self.admin, self.node = _free_port(), _free_port(), _free_port()
        full = {
            **os.environ,
            "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{self.ingress}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{self.admin}",
            "RESTATE_BIND_ADDRESS": f"127.0.0.1:{self.node}",
            "RESTATE_ADVERTISED_ADDRESS": f"http://127.0.0.1:{self.node}/",
            "RESTATE_DEFAULT_NUM_PARTITIONS": str(PARTITIONS),
            "RESTATE_LOG_FILTER": "warn",
            **env,
        }
        log = (base / f"{name}.log").open("ab")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "restate_server", "--base-dir", str(base / "data"), "--node-name", name],
            env=full,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait(self) -> None:
        deadline = time.monotonic() + 60
        while not procs.http_ok(f"http://127.0.0.1:{self.ingress}/restate/health"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not become ready")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _register(admin: int, uri: str) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{admin}/deployments",
        data=json.dumps({"uri": uri}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status in (200, 201)


def _start(base: Path, size: int, endpoints: list[str] | None) -> list[Node]:
    env: dict[str, str] = {}
    if endpoints is not None:
        env = {
            "RESTATE_CLUSTER_NAME": f"bench{int(time.time())}",
            "RESTATE_METADATA_CLIENT__TYPE": "etcd",
            "RESTATE_METADATA_CLIENT__ADDRESSES": json.dumps([f"http://{e}" for e in endpoints]),
            "RESTATE_DEFAULT_REPLICATION": "2",
            "RESTATE_ADMIN__LOG_TRIM_CHECK_INTERVAL": "10s",
            # a cluster trims its log only below a snapshot every replica could start from
            "RESTATE_WORKER__SNAPSHOTS__DESTINATION": (base / "snapshots").as_uri(),
            "RESTATE_WORKER__SNAPSHOTS__SNAPSHOT_INTERVAL_NUM_RECORDS": "5000",
        }
    nodes = [Node(f"n{i}", base, env) for i in range(1, size + 1)]
    for node in nodes:
        node.wait()
    return nodes


async def _greet_load(nodes: list[Node], concurrency: int, seconds: float) -> load.RunResult:
    ports = [n.ingress for n in nodes]
    made = 0

    def client() -> load.Client:
        nonlocal made
        made += 1
        return load.Client("127.0.0.1", ports[made % len(ports)], timeout_s=30)

    async def op(c: load.Client, index: int) -> None:
        resp = await c.request("POST", "/Greeter/greet", json.dumps(f"b{index}").encode())
        if resp.status != 200:
            raise load.HttpStatusError(resp.status, resp.body, "greet")

    return await load.run_closed_loop(
        op=op, make_client=client, concurrency=concurrency, duration_s=seconds, max_ops=10**9
    )


def _summary(result: load.RunResult) -> dict[str, float]:
    latencies = sorted(result.latencies_s)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0

    return {
        "ops_per_s": round(result.throughput, 1),
        "p50_ms": round(pct(0.5), 2),
        "p99_ms": round(pct(0.99), 2),
        "errors": result.errors,
    }


def throughput(args: argparse.Namespace, etcd_cluster: Any, base: Path, sdk: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, size, endpoints in (("one node", 1, None), ("three nodes", 3, etcd_cluster.endpoints)):
        run_dir = base / label.replace(" ", "-")
        run_dir.mkdir()
        nodes = _start(run_dir, size, endpoints)
        try:
            _register(nodes[0].admin, sdk)
            time.sleep(2)
            asyncio.run(_greet_load(nodes, args.concurrency, 3))  # warm-up
            out[label] = _summary(asyncio.run(_greet_load(nodes, args.concurrency, args.seconds)))
        finally:
            for node in nodes:
                node.stop()
        print(label, out[label], flush=True)
    out["ratio"] = round(out["three nodes"]["ops_per_s"] / max(out["one node"]["ops_per_s"], 1e-9), 2)
    return out


def soak(args: argparse.Namespace, etcd_cluster: Any, base: Path, sdk: str) -> dict[str, Any]:
    nodes = _start(base, 3, etcd_cluster.endpoints)
    samples: list[dict[str, float]] = []
    try:
        _register(nodes[0].admin, sdk)

        async def run() -> None:
            client = etcd.EtcdClient(etcd_cluster.endpoints)
            started = time.monotonic()
            loader = asyncio.create_task(_greet_load(nodes, args.concurrency, args.seconds))
            while not loader.done():
                size = await client.db_size()
                samples.append({"t_s": round(time.monotonic() - started), "db_bytes": size})
                print(samples[-1], flush=True)
                await asyncio.wait([loader], timeout=30)
            samples.append({"t_s": round(time.monotonic() - started), "db_bytes": await client.db_size()})
            result = loader.result()
            samples.append({"ops": result.ops, "ops_per_s": round(result.throughput, 1)})  # type: ignore[dict-item]
            await client.close()

        asyncio.run(run())
    finally:
        for node in nodes:
            node.stop()
    return {"samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("throughput", "soak"))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    module = _etcd_module()
    (base / "etcd").mkdir()
    etcd_cluster = module.EtcdCluster(base / "etcd")
    etcd_cluster.start()
    sdk_port = _free_port()
    sdk = subprocess.Popen(
        [PYTHON, "-m", "bench.services", "--port", str(sdk_port)],
        cwd=REPO,
        stdout=(base / "sdk.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while (
            procs.http_status(f"http://127.0.0.1:{sdk_port}/health") is None and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        run = throughput if args.mode == "throughput" else soak
        print(json.dumps(run(args, etcd_cluster, base, f"http://127.0.0.1:{sdk_port}"), indent=2))
    finally:
        sdk.send_signal(2)
        sdk.wait(10)
        etcd_cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
