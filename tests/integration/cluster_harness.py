"""Clusters of real server processes on one etcd (the session's 3-member etcd on loopback).

Each test's cluster gets its own cluster name, so its keys in etcd (`/restate/<name>/…`) never meet
another test's. Nodes are `harness.Server`s with the cluster environment upstream's operator sets
(`RESTATE_METADATA_CLIENT__*`, `RESTATE_DEFAULT_REPLICATION`, an advertised node-port address).
`table()` reads the partition table the controller keeps, to pick victims and check placements.
`Load` is a bounded load of idempotent counter adds through every node, retried on the next node, so
a fault test can check that the counters end exactly at the acknowledged adds.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from etcd_cluster import EtcdCluster
from harness import Sdk, Server, wait_until
from restate_server.cluster.placement import TABLE_KEY, PartitionTable
from restate_server.etcd import EtcdClient
from restate_server.metadata.providers.etcd import EtcdMetadataStore

NUM_PARTITIONS = 8
KEYS = [f"k{i}" for i in range(12)]


@dataclass
class Cluster:
    name: str
    etcd: EtcdCluster
    nodes: list[Server] = field(default_factory=list)

    @property
    def root(self) -> bytes:
        return b"/restate/" + self.name.encode()

    def start(self) -> None:
        for node in self.nodes:
            node.start(wait=False)  # nodes start together, as a StatefulSet's do
        for node in self.nodes:
            node.wait_ready()
        wait_until(lambda: self.placed(), timeout=30)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def _metadata(self, call: Any) -> Any:
        async def run() -> Any:
            client = EtcdClient(self.etcd.endpoints)
            try:
                return await call(EtcdMetadataStore(client, root=self.root), client)
            finally:
                await client.close()

        return asyncio.run(run())

    def table(self) -> PartitionTable:
        async def read(store: EtcdMetadataStore, _client: EtcdClient) -> PartitionTable:
            stored = await store.get(TABLE_KEY)
            assert stored is not None, "the cluster is not provisioned"
            return PartitionTable.decode(stored.value)

        result: PartitionTable = self._metadata(read)
        return result

    def placed(self) -> bool:
        """Every partition has a leader and a full replica set, and every node leads what it is given."""
        table = self.table()
        live = min(table.replication, len([n for n in self.nodes if n.proc and n.proc.poll() is None]))
        return all(p.leader is not None and len(p.replicas) >= live for p in table.partitions)

    def live_nodes(self) -> set[str]:
        """The nodes whose membership key (held by their lease) exists in etcd now."""

        async def read(_store: EtcdMetadataStore, client: EtcdClient) -> set[str]:
            from restate_server import etcd
            from restate_server.cluster.membership import NODES_PREFIX

            prefix = self.root + b"/md/" + NODES_PREFIX.encode()
            response = await client.range(prefix, etcd.prefix_end(prefix), keys_only=True)
            return {kv.key[len(prefix) :].decode() for kv in response.kvs}

        result: set[str] = self._metadata(read)
        return result

    def log_keys(self) -> int:
        """How many keys the partitions' logs hold in etcd."""

        async def count(_store: EtcdMetadataStore, client: EtcdClient) -> int:
            from restate_server import etcd

            prefix = self.root + b"/log/"
            response = await client.range(prefix, etcd.prefix_end(prefix), keys_only=True)
            return len(response.kvs)

        result: int = self._metadata(count)
        return result

    def node(self, name: str) -> Server:
        return next(n for n in self.nodes if n.node_name == name)

    def query(self, node: Server, sql: str) -> list[dict[str, Any]]:
        return node.query(sql)

    def register(self, uri: str) -> None:
        self.nodes[0].register(uri)
        # every node's registry follows the schema in etcd
        for node in self.nodes:
            wait_until(lambda node=node: _services(node) > 0, timeout=15)


def add(node: Server, key: str, op: str, *, timeout: float = 20) -> int:
    """Add 1 to counter `key` through `node`, idempotently (`op` is the idempotency key)."""
    resp = httpx.post(
        f"{node.ingress}/Counter/{key}/add",
        json=1,
        headers={"idempotency-key": op},
        timeout=timeout,
    )
    resp.raise_for_status()
    return int(resp.json())


def get(node: Server, key: str) -> int:
    resp = httpx.post(f"{node.ingress}/Counter/{key}/get", timeout=20)
    resp.raise_for_status()
    return int(resp.json())


@dataclass
class Load:
    """Clients adding to counters through every node, retrying an operation on the next node."""

    nodes: list[Server]
    name: str = "load"
    """Prefix of the operations' idempotency keys (two loads of one test must not share them)."""
    timeout: float = 20
    """Seconds an attempt waits for its node before the operation is retried on the next one."""
    acked: collections.Counter[str] = field(default_factory=collections.Counter)
    longest: float = 0.0
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, client: int, ops: int, deadline: float) -> None:
        for n in range(ops):
            key = KEYS[(client + n) % len(KEYS)]
            op = f"{self.name}-{client}-{n}"
            started = time.monotonic()
            attempt = 0
            while True:
                node = self.nodes[(client + n + attempt) % len(self.nodes)]
                try:
                    add(node, key, op, timeout=self.timeout)
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


def run_load(load: Load, clients: int, ops: int, during: float) -> list[concurrent.futures.Future[None]]:
    """Start `clients` threads of `ops` operations each; an operation gives up after `during` seconds."""
    pool = concurrent.futures.ThreadPoolExecutor(clients)
    deadline = time.monotonic() + during
    futures = [pool.submit(load.client, c, ops, deadline) for c in range(clients)]
    pool.shutdown(wait=False)
    return futures


def _services(node: Server) -> int:
    return len(httpx.get(f"{node.admin}/services", timeout=5).json()["services"])


def cluster_env(etcd: EtcdCluster, name: str, node_port: int, **extra: str) -> dict[str, str]:
    return {
        "RESTATE_CLUSTER_NAME": name,
        "RESTATE_METADATA_CLIENT__TYPE": "etcd",
        "RESTATE_METADATA_CLIENT__ADDRESSES": json.dumps([f"http://{e}" for e in etcd.endpoints]),
        "RESTATE_BIFROST__DEFAULT_PROVIDER": "replicated",
        "RESTATE_DEFAULT_REPLICATION": "2",
        "RESTATE_DEFAULT_NUM_PARTITIONS": str(NUM_PARTITIONS),
        "RESTATE_AUTO_PROVISION": "true",
        "RESTATE_ADVERTISED_ADDRESS": f"http://127.0.0.1:{node_port}/",
        **extra,
    }


def make_cluster(etcd: EtcdCluster, tmp_path: Path, size: int = 3, **extra: str) -> Cluster:
    cluster = Cluster(name=f"c{uuid.uuid4().hex[:10]}", etcd=etcd)
    for i in range(1, size + 1):
        node = Server(base_dir=tmp_path / "data", log_path=tmp_path / f"n{i}.log", node_name=f"n{i}")
        node.env = cluster_env(etcd, cluster.name, node.node_port, **extra)
        cluster.nodes.append(node)
    return cluster


@pytest.fixture
def cluster(etcd_cluster: EtcdCluster, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    c = make_cluster(etcd_cluster, tmp_path)
    c.start()
    yield c
    c.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        for node in c.nodes:
            print(f"--- {node.node_name}\n{node.log_path.read_text()[-8000:]}")


@pytest.fixture
def deployed_cluster(cluster: Cluster, sdk: Sdk) -> Cluster:
    cluster.register(sdk.uri)
    return cluster
