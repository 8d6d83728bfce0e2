"""Kafka ingestion throughput: records/s from a topic into a virtual object, through this server.

Not a test and not part of ``python -m bench`` (upstream's binary would need a broker configuration
of its own): a standalone measurement. It starts tansu (memory storage), this server with the broker
as a configured cluster, and the bench SDK services; pre-produces N keyed records to a topic; then
creates a subscription ``kafka://bench/<topic> → service://Counter/add`` and measures two times:

* **ingested**: until every record is durable in the log as an invocation (the subscription's
  ``restate_kafka_ingress_requests_total`` reaches N), i.e. the Kafka side alone;
* **processed**: until N invocations are completed (``sys_invocation``: they ran in the SDK), end to
  end; then the counters are checked to add up to N exactly.

Both are timed from the moment the consumer got its partitions (the ``assigned`` line of the server
log; tansu's group join before it, ~3 s, is not counted) on the wall clock.

Run: ``.venv/bin/python -m bench.kafka_ingest --records 20000 --keys 100 --partitions 4``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "integration"), str(ROOT / "tests")]  # kafka_broker imports ports

from kafka_broker import Broker, free_port  # noqa: E402  (tests/integration is not a package)

CONSUMER_OPTIONS = {
    "auto.offset.reset": "earliest",
    "session.timeout.ms": "6000",
    "heartbeat.interval.ms": "500",
}


def wait(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if check():
                return
        time.sleep(interval)
    raise TimeoutError(what)


@contextlib.contextmanager
def process(argv: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ingested(node_port: int, sub_id: str) -> int:
    text = httpx.get(f"http://127.0.0.1:{node_port}/metrics", timeout=5).text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("restate_kafka_ingress_requests_total{") and f'subscription="{sub_id}"' in line
    )


def assigned_at(server_log: Path) -> float | None:
    """Wall-clock time of the consumer's first assignment, from the server log."""
    for line in server_log.read_text(errors="replace").splitlines():
        if ": assigned (" in line:
            stamp = line.split(" ", 1)[0].rstrip("Z")
            return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
    return None


def run(records: int, keys: int, partitions: int, work: Path) -> dict[str, float]:
    broker = Broker(log_path=work / "tansu.log")
    broker.start()
    try:
        config = work / "restate.toml"
        config.write_text(f'[[ingress.kafka-clusters]]\nname = "bench"\nbrokers = ["{broker.bootstrap}"]\n')
        ingress, admin, node, services = free_port(), free_port(), free_port(), free_port()
        server_env = {
            "RESTATE_CONFIG": str(config),
            "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ingress}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{admin}",
            "RESTATE_BIND_ADDRESS": f"127.0.0.1:{node}",
            "RESTATE_LOG_FILTER": "info",
        }
        server_argv = [sys.executable, "-m", "restate_server", "--base-dir", str(work / "data")]
        services_argv = [sys.executable, "-m", "bench.services", "--port", str(services), "--prefix", ""]
        with (
            process(server_argv, work / "server.log", server_env),
            process(services_argv, work / "services.log", {"PYTHONPATH": str(ROOT)}),
        ):
            wait(lambda: httpx.get(f"http://127.0.0.1:{admin}/health").status_code == 200, 60, "server")
            wait(lambda: httpx.get(f"http://127.0.0.1:{services}/health").status_code < 500, 60, "services")
            registered = httpx.post(
                f"http://127.0.0.1:{admin}/deployments",
                json={"uri": f"http://127.0.0.1:{services}"},
                timeout=30,
            )
            registered.raise_for_status()
            broker.create_topic("adds", partitions)
            broker.produce("adds", [(f"k{i % keys}", b"1") for i in range(records)])
            created = httpx.post(
                f"http://127.0.0.1:{admin}/subscriptions",
                json={
                    "source": "kafka://bench/adds",
                    "sink": "service://Counter/add",
                    "options": CONSUMER_OPTIONS,
                },
                timeout=30,
            )
            created.raise_for_status()
            sub_id = created.json()["id"]
            wait(lambda: assigned_at(work / "server.log") is not None, 60, "partitions assigned")
            started = assigned_at(work / "server.log") or 0.0
            wait(lambda: ingested(node, sub_id) >= records, 600, "every record ingested", interval=0.01)
            ingest_s = time.time() - started

            def completed() -> int:
                query = "SELECT count(*) AS n FROM sys_invocation WHERE status = 'completed'"
                answer = httpx.post(
                    f"http://127.0.0.1:{admin}/query",
                    json={"query": query},
                    headers={"accept": "application/json"},
                    timeout=30,
                )
                return int(answer.json()["rows"][0]["n"])

            wait(lambda: completed() >= records, 900, "every record processed", interval=0.25)
            process_s = time.time() - started
            counted = sum(
                int(httpx.post(f"http://127.0.0.1:{ingress}/Counter/k{k}/get", timeout=30).json())
                for k in range(keys)
            )
            assert counted == records, "exactly once: the counters must add up to the records"
    finally:
        broker.stop()
    return {
        "records": records,
        "keys": keys,
        "partitions": partitions,
        "ingested_per_s": round(records / ingest_s),
        "processed_per_s": round(records / process_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kafka-bench-") as work:
        print(json.dumps(run(args.records, args.keys, args.partitions, Path(work))))


if __name__ == "__main__":
    main()
