"""Large calls leave no memory behind: once they are done, the server shrinks back to about its size
before them (the log's tail, the stores' memtables and glibc's heaps all let go of the payloads)."""

from __future__ import annotations

from pathlib import Path

import httpx
from harness import Server, wait_until

MiB = 1024 * 1024
PAYLOAD = 20 * MiB
CALLS = 3
# Three 20 MiB calls used to leave 100-200 MiB in memtables and heaps. What may stay: up to 16 MiB
# free at the top of each thread's heap (the trim threshold; malloc_trim trims only the main heap's).
LEFT_BEHIND_BOUND = 64 * MiB


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _memtable_bytes(server: Server) -> float:
    """What both stores' memtables hold (a large value stays there until they are flushed)."""
    metrics = httpx.get(f"http://{server.host}:{server.node_port}/metrics", timeout=10).text
    samples = (
        line.split()[-1]
        for line in metrics.splitlines()
        if line.startswith("restate_rocksdb_cur_size_all_mem")
    )
    return sum(float(sample) for sample in samples)


def _settled(server: Server, pid: int, before: int) -> bool:
    return _rss(pid) < before + LEFT_BEHIND_BOUND and _memtable_bytes(server) < MiB


def test_large_calls_leave_the_server_about_as_large_as_before(deployed: Server) -> None:
    assert deployed.proc is not None
    pid = deployed.proc.pid
    assert deployed.call("Greeter/greet", "warm-up").status_code == 200
    before = _rss(pid)
    name = "x" * PAYLOAD
    for n in range(CALLS):
        answer = deployed.call("Greeter/greet", f"{n}{name}", timeout=120)
        assert answer.status_code == 200, answer.text[:200]
        assert answer.json() == f"Hello {n}{name}!"
    peak = _rss(pid)
    try:
        # the stores may write the last payload after its answer (under load, seconds after)
        wait_until(lambda: _settled(deployed, pid, before), timeout=15)
    finally:
        print(
            f"\nserver RSS {before >> 20} MiB before, {peak >> 20} MiB after the calls, {_rss(pid) >> 20} MiB settled"
        )
