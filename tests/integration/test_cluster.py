"""Three server processes on one etcd form one cluster: shared schema, shared partitions, failover.

Load is bounded (a fixed number of operations per client, each with a deadline). Every operation
carries an idempotency key, so a client that lost its node (or its answer) retries on another node
without doubling anything: the counters must end exactly at the number of acknowledged adds.
"""

from __future__ import annotations

import collections
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
from cluster_harness import KEYS, Cluster, Load, add, get, make_cluster, run_load
from etcd_cluster import EtcdCluster
from harness import Sdk, Server, wait_until
from restate_server.replay.client import ReplayClient, event_json


def test_register_on_one_node_call_through_each(deployed_cluster: Cluster) -> None:
    cluster = deployed_cluster
    for node in cluster.nodes:
        greeting = httpx.post(f"{node.ingress}/Greeter/greet", json=node.node_name, timeout=20)
        assert greeting.json() == f"Hello {node.node_name}!"
    for round_ in range(3):
        for node in cluster.nodes:
            for key in KEYS:
                add(node, key, f"basic-{round_}-{node.node_name}-{key}")
    for node in cluster.nodes:
        assert [get(node, key) for key in KEYS] == [9] * len(KEYS)
    # every node answers /query for every partition (its own, and the others' from their leaders)
    counts = [
        cluster.query(node, "SELECT count(*) AS n FROM sys_invocation WHERE target_handler_name = 'add'")
        for node in cluster.nodes
    ]
    assert counts == [[{"n": 9 * len(KEYS)}]] * 3
    table = cluster.table()
    assert sorted({p.leader for p in table.partitions}) == ["n1", "n2", "n3"]  # leadership is spread
    # the Replay API answers on every node, relaying to the leader of the key's partition
    for key in KEYS:
        histories = [_replay(node, key) for node in cluster.nodes]
        assert histories[0] == histories[1] == histories[2], key
        operations = [op for event in histories[0] for op in event["operations"]]
        assert [op["version"] for op in operations] == list(range(1, 10)), key
        assert operations[-1]["value"] == {"value": 9.0}, key


def _replay(node: Server, key: str) -> list[dict[str, Any]]:
    with ReplayClient(f"127.0.0.1:{node.node_port}") as client:
        return [event_json(e) for e in client.replay(namespace="Counter", agent_id=key, timeout=30)]


def test_sigkill_of_the_busiest_leader_under_load(deployed_cluster: Cluster) -> None:
    cluster = deployed_cluster
    table = cluster.table()
    victim_name = max(("n1", "n2", "n3"), key=lambda n: len(table.led_by(n)))
    victim = cluster.node(victim_name)
    survivors = [n for n in cluster.nodes if n is not victim]
    load = Load(nodes=cluster.nodes)
    futures = run_load(load, clients=6, ops=40, during=90)
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
        assert get(survivors[0], key) == load.acked[key]
    print(
        f"failover: table moved {table_moved_after:.2f}s after the SIGKILL; "
        f"longest acknowledged operation {load.longest:.2f}s"
    )


def test_sigkill_of_an_etcd_member_under_load(deployed_cluster: Cluster) -> None:
    cluster = deployed_cluster
    etcd = cluster.etcd
    leader = etcd.leader()
    load = Load(nodes=cluster.nodes)
    futures = run_load(load, clients=4, ops=30, during=90)
    wait_until(lambda: sum(load.acked.values()) >= 20, timeout=60)
    etcd.kill(leader)
    try:
        for future in futures:
            future.result(timeout=120)
    finally:
        etcd.restart(leader)
    assert load.failed == []
    for key in KEYS:
        assert get(cluster.nodes[0], key) == load.acked[key]
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
            add(cluster.nodes[n % 3], key, f"wipe-{n}")
            acked[key] += 1
        keys_before = cluster.log_keys()
        wait_until(lambda: cluster.log_keys() < keys_before, timeout=60)  # trimmed behind the snapshots
        victim = cluster.node("n2")
        victim.kill()
        shutil.rmtree(tmp_path / "data" / "n2")  # store, everything: a new disk
        for n in range(120, 150):  # the others go on meanwhile
            key = KEYS[n % len(KEYS)]
            add(cluster.nodes[n % 2 * 2], key, f"wipe-{n}")
            acked[key] += 1
        victim.start()
        # it is given replicas again and builds them from a snapshot plus the log's suffix
        wait_until(lambda: "restoring the latest snapshot" in victim.log_path.read_text(), timeout=60)
        wait_until(lambda: len(cluster.table().led_by("n2")) > 0, timeout=60)
        for node in cluster.nodes:
            assert [get(node, key) for key in KEYS] == [acked[key] for key in KEYS]
    finally:
        cluster.stop()
