"""Ingress latency while the retention cleaner scans a store of retained completed invocations.

Writes N completed invocations (retained for a day, so every pass scans them all and purges none)
straight into a fresh node's partition store with the storage API, starts the server on that data
directory with a short `worker.cleanup-interval`, and attaches to one of them over the ingress in a
loop for a while: each attach goes through the event loop the cleaner runs on. Reports the worst and
the 99th-percentile attach latency.

    .venv/bin/python -m bench.cleanup_latency                       # this tree
    .venv/bin/python -m bench.cleanup_latency --server-src OLD/server  # another tree's server

Not a test: numbers depend on the machine. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from restate_server.ids import InvocationId, partition_key_for, partition_of
from restate_server.outcomes import Value
from restate_server.rocksdb import Database
from restate_server.storage import status
from restate_server.storage.status import InvocationStatus, Status
from restate_server.storage.transaction import Transaction

PARTITIONS = 8
DAY_MS = 86_400_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def populate(db_path: Path, count: int) -> str:
    """Write `count` retained completed invocations; returns one of their ids (to attach to)."""
    db = Database(db_path, wal=False)
    now = int(time.time() * 1000)
    txn = Transaction(db)
    first = ""
    for n in range(count):
        inv = InvocationId.deterministic(partition_key_for(f"key-{n}"), "bench", str(n))
        first = first or str(inv)
        row = InvocationStatus(
            status=Status.COMPLETED,
            service="Greeter",
            handler="greet",
            key=None,
            service_ty="Service",
            handler_ty=None,
            created_at=now,
            modified_at=now,
            source=["ingress", None, None, None],
            idempotency_key=f"idem-{n}",
            completed_at=now,
            completion_retention=DAY_MS,
            result=Value(content=b'"done"'),
        )
        status.put(txn, partition_of(inv.partition_key, PARTITIONS), inv.to_bytes(), row)
        if n % 10_000 == 9_999:
            txn.commit()
            txn = Transaction(db)
    txn.commit()
    db.close()
    return first


def measure(server_src: Path | None, count: int, seconds: float, interval: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="cleanup-bench-") as tmp:
        base = Path(tmp)
        started = time.monotonic()
        target = populate(base / "n1" / "db", count)
        populated_in = time.monotonic() - started
        ingress, admin, node = _free_port(), _free_port(), _free_port()
        env = {
            **os.environ,
            "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ingress}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{admin}",
            "RESTATE_BIND_ADDRESS": f"127.0.0.1:{node}",
            "RESTATE_DEFAULT_NUM_PARTITIONS": str(PARTITIONS),
            "RESTATE_WORKER__CLEANUP_INTERVAL": interval,
            "RESTATE_LOG_FILTER": "warn",
        }
        if server_src is not None:
            env["PYTHONPATH"] = str(server_src)
        log = (base / "server.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "restate_server", "--base-dir", str(base), "--node-name", "n1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{ingress}/restate/invocation/{target}/attach"
            with httpx.Client(timeout=120) as client:
                deadline = time.monotonic() + 300
                while True:
                    try:
                        if client.get(url).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("the server did not come up")
                    time.sleep(0.2)
                latencies = []
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    sent = time.perf_counter()
                    assert client.get(url).status_code == 200
                    latencies.append(time.perf_counter() - sent)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    latencies.sort()
    return {
        "server": str(server_src) if server_src else "this tree",
        "retained_invocations": count,
        "populate_seconds": round(populated_in, 1),
        "cleanup_interval": interval,
        "probe_seconds": seconds,
        "attaches": len(latencies),
        "max_ms": round(latencies[-1] * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "median_ms": round(latencies[len(latencies) // 2] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server-src", type=Path, help="run the server from this source tree (PYTHONPATH)")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to probe the ingress")
    parser.add_argument("--interval", default="5s", help="worker.cleanup-interval for the run")
    args = parser.parse_args()
    print(json.dumps(measure(args.server_src, args.count, args.seconds, args.interval), indent=2))


if __name__ == "__main__":
    main()
