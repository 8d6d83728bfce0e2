"""Does restarting this project's server take longer as it retains more invocations? (ours only)

``python -m bench.restart_scale --invocations 1000000`` (inside a private network namespace, like
``bench/run.sh``; ``bench/run.sh`` is not needed) starts the server on a fresh directory, registers
nothing, stops it, and writes N completed, retained invocations (status row, input and output
journal entries) straight into its partition store, as the processors would have left them. It then
times, for the empty store and the filled one: a start to ready, and a SIGKILL-to-ready while a
caller keeps hitting the ingress. Filling through the API would take about 12 minutes per million
calls; the rows written are the server's own encodings (``storage.status``, ``storage.journal``).
Upstream cannot be filled this way, so it is not run here; ``bench/run.sh`` compares restarts
under load with upstream.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from bench import procs

WORK = Path(__file__).resolve().parent / ".work" / "restart-scale"
SERVER = Path(__file__).resolve().parent.parent / ".venv/bin/restate-py-server"


def _fill(base: Path, count: int, num_partitions: int) -> float:
    """Write ``count`` completed invocations into the stopped server's partition store; seconds taken."""
    from restate_server.ids import InvocationId, partition_of
    from restate_server.outcomes import Value
    from restate_server.rocksdb import Database
    from restate_server.storage import journal, status
    from restate_server.storage.status import InvocationStatus, Status
    from restate_server.storage.transaction import Transaction

    started = time.monotonic()
    [db_dir] = list(base.glob("*/db"))
    db = Database(db_dir)
    rng = random.Random(1)
    now = int(time.time() * 1000)
    txn = Transaction(db)
    for n in range(count):
        inv = InvocationId.generate(rng.getrandbits(64))
        partition = partition_of(inv.partition_key, num_partitions)
        st = InvocationStatus(
            status=Status.COMPLETED,
            service="Greeter",
            handler="greet",
            key=None,
            service_ty="Service",
            handler_ty=None,
            created_at=now,
            modified_at=now,
            source=["ingress", None, None, None],
            idempotency_key=f"fill-{n}",
            journal_length=2,
            commands=2,
            running_at=now,
            completed_at=now,
            completion_retention=86_400_000,
            journal_retention=86_400_000,
            result=Value(content=b'"Hello!"'),
        )
        status.put(txn, partition, inv.to_bytes(), st)
        journal.append(txn, partition, inv.to_bytes(), 0, 0x0400, 0, b'\x0a\x08"fill"')
        journal.append(txn, partition, inv.to_bytes(), 1, 0x0401, 0, b'\x0a\x08"Hello!"')
        if n % 20_000 == 19_999:
            txn.commit()
            txn = Transaction(db)
    txn.commit()
    db.close()
    return time.monotonic() - started


def _retained(admin_port: int) -> int | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{admin_port}/query",
        data=json.dumps({"query": "SELECT count(*) AS n FROM sys_invocation"}).encode(),
        headers={"content-type": "application/json", "accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return int(json.loads(response.read())["rows"][0]["n"])
    except (OSError, ValueError, KeyError, IndexError):
        return None


def _measure(spec: procs.ServerSpec, base: Path, log: Path) -> dict[str, float | int | None]:
    server = procs.Running(spec, base, log)
    ready = server.wait_ready(120)
    figures: dict[str, float | int | None] = {"start_to_ready_s": ready}
    hammer = subprocess.Popen(  # a caller that keeps calling across the kill
        [
            str(SERVER.parent / "python"),
            "-c",
            "import urllib.request,time\n"
            "while True:\n"
            "  try: urllib.request.urlopen(urllib.request.Request("
            f"'http://127.0.0.1:{spec.ports.ingress}/Greeter/greet', data=b'1', method='POST'), timeout=1)\n"
            "  except Exception: time.sleep(0.01)\n",
        ]
    )
    try:
        time.sleep(1.0)
        server.kill()
        server = procs.Running(spec, base, log)
        figures["sigkill_to_ready_s"] = server.wait_ready(120)
        figures["rss_after_restart_mb"] = round(procs.rss_bytes(server.pid) / 1e6, 1)
        figures["retained"] = _retained(spec.ports.admin)
    finally:
        hammer.kill()
        server.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=24)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    base, log = WORK / "data", WORK / "server.log"
    spec = procs.ServerSpec(name="ours", argv=[str(SERVER), "--base-dir", str(base)], ports=procs.Ports())
    first = procs.Running(spec, base, log)
    first.wait_ready(60)
    first.stop()
    results = {"empty": _measure(spec, base, log)}
    filled_s = _fill(base, args.invocations, args.partitions)
    results[f"{args.invocations:,} retained"] = _measure(spec, base, log)
    print(json.dumps({"fill_s": round(filled_s, 1), **results}, indent=1))


if __name__ == "__main__":
    main()
