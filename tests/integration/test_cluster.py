"""Three server processes on one etcd form one cluster: shared schema, shared partitions, failover.

Load is bounded (a fixed number of operations per client, each with a deadline). Every operation
carries an idempotency key, so a client that lost its node (or its answer) retries on another node
without doubling anything: the counters must end exactly at the number of acknowledged adds.
"""

from __future__ import annotations

import collections
import concurrent.futures
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cluster_harness import Cluster, make_cluster
from etcd_cluster import EtcdCluster
from harness import Sdk, Server, wait_until

KEYS = [f"k{i}" for i in range(12)]


def _add(node: Server, key: str, op: str) -> int:
    resp = httpx.post(
        f"{node.ingress}/Counter/{key}/add",
        json=1,
        headers={"idempotency-key": op},
        timeout=20,
    )
    resp.raise_for_status()
    return int(resp.json())


def _get(node: Server, key: str) -> int:
    resp = httpx.post(f"{node.ingress}/Counter/{key}/get", timeout=20)
    resp.raise_for_status()
    return int(resp.json())


def test_register_on_one_node_call_through_each(deployed_cluster: Cluster) -> None:
    cluster = deployed_cluster
    for node in cluster.nodes:
        greeting = httpx.post(f"{node.ingress}/Greeter/greet", json=node.node_name, timeout=20)
        assert greeting.json() == f"Hello {node.node_name}!"
    for round_ in range(3):
        for node in cluster.nodes:
            for key in KEYS:
                _add(node, key, f"basic-{round_}-{node.node_name}-{key}")
    for node in cluster.nodes:
        assert [_get(node, key) for key in KEYS] == [9] * len(KEYS)
    # every node answers /query for every partition (its own, and the others' from their leaders)
    counts = [
        cluster.query(node, "SELECT count(*) AS n FROM sys_invocation WHERE target_handler_name = 'add'")
        for node in cluster.nodes
    ]
    assert counts == [[{"n": 9 * len(KEYS)}]] * 3
    table = cluster.table()
    assert sorted({p.leader for p in table.partitions}) == ["n1", "n2", "n3"]  # leadership is spread


@dataclass
class Load:
    """Clients adding to counters through every node, retrying an operation on the next node."""

    nodes: list[Server]
    acked: collections.Counter[str] = field(default_factory=collections.Counter)
    longest: float = 0.0
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, client: int, ops: int, deadline: float) -> None:
        for n in range(ops):
            key = KEYS[(client + n) % len(KEYS)]
            op = f"load-{client}-{n}"
            started = time.monotonic()
            attempt = 0
            while True:
                node = self.nodes[(client + n + attempt) % len(self.nodes)]
                try:
                    _add(node, key, op)
                    break
                except (httpx.HTTPError, ValueError):
                    attempt += 1
                    if time.monotonic() > deadline:
                        with self.lock:
                            self.failed.append(op)
                        return
                    time.sleep(0.05)
            with self.lock:
                self.acked[key] += 1
                self.longest = max(self.longest, time.monotonic() - started)


def _run_load(load: Load, clients: int, ops: int, during: float) -> list[concurrent.futures.Future[None]]:
    pool = concurrent.futures.ThreadPoolExecutor(clients)
    deadline = time.monotonic() + during
    futures = [pool.submit(load.client, c, ops, deadline) for c in range(clients)]
    pool.shutdown(wait=False)
    return futures


def test_sigkill_of_the_busiest_leader_under_load(deployed_cluster: Cluster) -> None:
    cluster = deployed_cluster
    table = cluster.table()
    victim_name = max(("n1", "n2", "n3"), key=lambda n: len(table.led_by(n)))
    victim = cluster.node(victim_name)
    survivors = [n for n in cluster.nodes if n is not victim]
    load = Load(nodes=cluster.nodes)
    futures = _run_load(load, clients=6, ops=40, during=90)
    wait_until(lambda: sum(load.acked.values()) >= 30, timeout=60)
    killed_at = time.monotonic()
    victim.kill()

    def moved() -> bool:
        now = cluster.table()
        return all(p.leader != victim_name and p.leader is not None for p in now.partitions)

    wait_until(moved, timeout=30)
    table_moved_after = time.monotonic() - killed_at
    for future in futures:
        future.result(timeout=120)
    assert load.failed == []
    for key in KEYS:
        assert _get(survivors[0], key) == load.acked[key]
    print(
        f"failover: table moved {table_moved_after:.2f}s after the SIGKILL; "
        f"longest acknowledged operation {load.longest:.2f}s"
    )


def test_sigkill_of_an_etcd_member_under_load(deployed_cluster: Cluster) -> None:
    cluster = deployed_cluster
    etcd = cluster.etcd
    leader = etcd.leader()
    load = Load(nodes=cluster.nodes)
    futures = _run_load(load, clients=4, ops=30, during=90)
    wait_until(lambda: sum(load.acked.values()) >= 20, timeout=60)
    etcd.kill(leader)
    try:
        for future in futures:
            future.result(timeout=120)
    finally:
        etcd.restart(leader)
    assert load.failed == []
    for key in KEYS:
        assert _get(cluster.nodes[0], key) == load.acked[key]
    print(f"etcd leader SIGKILL: longest acknowledged operation {load.longest:.2f}s")


def test_a_wiped_node_rejoins_from_a_snapshot_and_the_log_is_trimmed(
    etcd_cluster: EtcdCluster, tmp_path: Path, sdk: Sdk
) -> None:
    snapshots = tmp_path / "snapshots"
    cluster = make_cluster(
        etcd_cluster,
        tmp_path,
        RESTATE_WORKER__SNAPSHOTS__DESTINATION=f"file://{snapshots}",
        RESTATE_WORKER__SNAPSHOTS__SNAPSHOT_INTERVAL_NUM_RECORDS="10",
        RESTATE_ADMIN__LOG_TRIM_CHECK_INTERVAL="1s",
    )
    cluster.start()
    try:
        cluster.register(sdk.uri)
        acked: collections.Counter[str] = collections.Counter()
        for n in range(120):
            key = KEYS[n % len(KEYS)]
            _add(cluster.nodes[n % 3], key, f"wipe-{n}")
            acked[key] += 1
        keys_before = cluster.log_keys()
        wait_until(lambda: cluster.log_keys() < keys_before, timeout=60)  # trimmed behind the snapshots
        victim = cluster.node("n2")
        victim.kill()
        shutil.rmtree(tmp_path / "data" / "n2")  # store, everything: a new disk
        for n in range(120, 150):  # the others go on meanwhile
            key = KEYS[n % len(KEYS)]
            _add(cluster.nodes[n % 2 * 2], key, f"wipe-{n}")
            acked[key] += 1
        victim.start()
        # it is given replicas again and builds them from a snapshot plus the log's suffix
        wait_until(lambda: "restoring the latest snapshot" in victim.log_path.read_text(), timeout=60)
        wait_until(lambda: len(cluster.table().led_by("n2")) > 0, timeout=60)
        for node in cluster.nodes:
            assert [_get(node, key) for key in KEYS] == [acked[key] for key in KEYS]
    finally:
        cluster.stop()
