"""Kafka subscriptions consume, exactly once, against a real broker (tansu) and real SDK services.

Each record becomes one invocation: sums are exact and each key sees its values in produce order,
also across a SIGKILL of the server mid-consumption; a service sink gets upstream's headers;
deleting a subscription stops it; a broker that is down is retried until it comes up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Sdk, Server, wait_until
from kafka_broker import CONSUMER_OPTIONS, Broker, broker_available, kafka_broker

__all__ = ["kafka_broker"]

KEYS = [f"key-{i}" for i in range(12)]


def kafka_config(path: Path, brokers: str) -> Path:
    path.write_text(f'[[ingress.kafka-clusters]]\nname = "local"\nbrokers = ["PLAINTEXT://{brokers}"]\n')
    return path


def start_server(tmp_path: Path, sdk: Sdk, brokers: str, **env: str) -> Server:
    config = kafka_config(tmp_path / "restate.toml", brokers)
    server = Server(
        base_dir=tmp_path / "data",
        log_path=tmp_path / "server.log",
        env={"RESTATE_CONFIG": str(config), **env},
    )
    server.start()
    server.register(sdk.uri)
    return server


@pytest.fixture
def node(tmp_path: Path, sdk: Sdk, kafka_broker: Broker, request: pytest.FixtureRequest) -> Iterator[Server]:
    server = start_server(tmp_path, sdk, kafka_broker.bootstrap)
    yield server
    server.stop()
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(server.log_path.read_text()[-20000:])


def subscribe(server: Server, topic: str, sink: str, cluster: str = "local", **options: str) -> str:
    resp = httpx.post(
        f"{server.admin}/subscriptions",
        json={
            "source": f"kafka://{cluster}/{topic}",
            "sink": sink,
            "options": {**CONSUMER_OPTIONS, **options},
        },
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def keyed_records(count: int) -> tuple[list[tuple[str | None, bytes]], dict[str, list[int]]]:
    """``count`` records round-robin over KEYS with values 1..count, and each key's values in order."""
    records: list[tuple[str | None, bytes]] = []
    expected: dict[str, list[int]] = {k: [] for k in KEYS}
    for value in range(1, count + 1):
        key = KEYS[value % len(KEYS)]
        records.append((key, str(value).encode()))
        expected[key].append(value)
    return records, expected


def seen(server: Server, key: str) -> list[int]:
    resp = server.call(f"Counter/{key}/seen")
    assert resp.status_code == 200, resp.text
    return list(resp.json())


def total_seen(server: Server) -> int:
    return sum(len(seen(server, k)) for k in KEYS)


def metric(server: Server, name: str, **labels: str) -> float | None:
    text = httpx.get(f"http://127.0.0.1:{server.node_port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_keyed_records_into_an_object_exactly_once_in_key_order(node: Server, kafka_broker: Broker) -> None:
    kafka_broker.create_topic("adds", partitions=3)
    records, expected = keyed_records(600)
    kafka_broker.produce("adds", records[:300])
    sub_id = subscribe(node, "adds", "service://Counter/append")
    kafka_broker.produce("adds", records[300:])
    wait_until(lambda: total_seen(node) >= 600, timeout=120, interval=0.5)
    for key in KEYS:
        assert seen(node, key) == expected[key], key
        assert node.call(f"Counter/{key}/get").json() == sum(expected[key])
    assert (
        sum(
            metric(node, "restate_kafka_ingress_requests_total", subscription=sub_id, partition=str(p)) or 0
            for p in range(3)
        )
        == 600
    )
    wait_until(
        lambda: all(
            metric(node, "restate_kafka_ingress_consumer_lag", subscription=sub_id, partition=str(p)) == 0
            for p in range(3)
        ),
        timeout=30,
    )


def test_backpressure_pauses_and_resumes_without_losing_or_doubling(
    tmp_path: Path, sdk: Sdk, kafka_broker: Broker
) -> None:
    # a budget smaller than one batch: every batch pauses consumption until its appends are durable
    budget = {"RESTATE_INGRESS__INGESTION__INFLIGHT_MEMORY_BUDGET": "1KiB"}
    server = start_server(tmp_path, sdk, kafka_broker.bootstrap, **budget)
    try:
        kafka_broker.create_topic("slow", partitions=3)
        records, expected = keyed_records(300)
        kafka_broker.produce("slow", records)
        subscribe(server, "slow", "service://Counter/append")
        wait_until(lambda: total_seen(server) >= 300, timeout=120, interval=0.5)
        for key in KEYS:
            assert seen(server, key) == expected[key], key
        log = server.log_path.read_text()
        assert "consumption paused" in log
        assert "consumption resumed" in log
    finally:
        server.stop()


def test_service_sink_gets_value_and_kafka_headers(
    node: Server, kafka_broker: Broker, side_effects: Path
) -> None:
    kafka_broker.create_topic("events", partitions=2)
    sub_id = subscribe(node, "events", "service://Durable/record_event")
    kafka_broker.produce(
        "events", [(None if i % 2 else f"k{i}", json.dumps(f"ev{i}").encode()) for i in range(40)]
    )

    def lines() -> list[str]:
        return side_effects.read_text().splitlines()

    wait_until(lambda: len(lines()) >= 40, timeout=90, interval=0.5)
    recorded = lines()
    assert sorted(line.split(" ")[0] for line in recorded) == sorted(f"ev{i}" for i in range(40))
    first = next(line for line in recorded if line.startswith("ev0 "))
    assert re.fullmatch(
        rf"ev0 kafka.topic=events kafka.partition=\d kafka.offset=\d+ kafka.key=azA= restate.subscription.id={sub_id}",
        first,
    ), first
    odd = next(line for line in recorded if line.startswith("ev1 "))
    assert "kafka.key=None" in odd  # a record without a key has no kafka.key header


def test_sigkill_mid_consumption_loses_and_doubles_nothing(
    tmp_path: Path, sdk: Sdk, kafka_broker: Broker, node: Server
) -> None:
    kafka_broker.create_topic("crash", partitions=3)
    records, expected = keyed_records(600)
    kafka_broker.produce("crash", records)
    # no offset is committed before the kill, so the restarted server reads every record again
    sub_id = subscribe(node, "crash", "service://Counter/append", **{"auto.commit.interval.ms": "600000"})
    wait_until(lambda: total_seen(node) >= 100, timeout=120, interval=0.2)
    node.kill()
    node.start()

    def reread() -> float:
        return sum(
            metric(node, "restate_kafka_ingress_requests_total", subscription=sub_id, partition=str(p)) or 0
            for p in range(3)
        )

    wait_until(lambda: reread() == 600, timeout=180, interval=0.5)  # everything read again ...
    wait_until(lambda: total_seen(node) >= 600, timeout=180, interval=0.5)
    for key in KEYS:  # ... and dropped as duplicates: each value once, in order
        assert seen(node, key) == expected[key], key


def test_delete_stops_consumption(node: Server, kafka_broker: Broker) -> None:
    kafka_broker.create_topic("stop", partitions=1)
    kafka_broker.produce("stop", [("k", b"1")] * 10)
    first = subscribe(node, "stop", "service://Counter/add")
    wait_until(lambda: node.call("Counter/k/get").json() == 10, timeout=90, interval=0.5)
    assert httpx.delete(f"{node.admin}/subscriptions/{first}", timeout=30).status_code == 202
    wait_until(lambda: f"subscription {first}: consumer stopped" in node.log_path.read_text(), timeout=30)
    kafka_broker.produce("stop", [("k", b"1")] * 10)
    # a second subscription reading the whole topic proves the new records are there to be read
    subscribe(node, "stop", "service://Counter/append")
    wait_until(lambda: len(seen(node, "k")) == 20, timeout=90, interval=0.5)
    assert node.call("Counter/k/get").json() == 30  # 10 from the first, 20 from the second


def test_broker_down_is_retried_until_it_comes_up(tmp_path: Path, sdk: Sdk) -> None:
    if not broker_available():
        pytest.skip("no Kafka broker")
    broker = Broker(log_path=tmp_path / "tansu.log")
    server = start_server(tmp_path, sdk, broker.bootstrap)
    try:
        sub_id = subscribe(server, "late", "service://Counter/add")
        wait_until(lambda: "Kafka error" in server.log_path.read_text(), timeout=60, interval=0.5)
        assert (metric(server, "restate_kafka_ingress_errors_total", subscription=sub_id) or 0) > 0
        broker.start()
        broker.create_topic("late", partitions=1)
        broker.produce("late", [("k", b"5")] * 3)
        wait_until(lambda: server.call("Counter/k/get").json() == 15, timeout=120, interval=0.5)
    finally:
        server.stop()
        broker.stop()


def test_subscription_on_a_cluster_created_through_the_admin_api(node: Server, kafka_broker: Broker) -> None:
    created = httpx.post(
        f"{node.admin}/kafka-clusters",
        json={"name": "dynamic", "properties": {"bootstrap.servers": kafka_broker.bootstrap}},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    kafka_broker.create_topic("dyn", partitions=1)
    kafka_broker.produce("dyn", [("d", b"2")] * 5)
    subscribe(node, "dyn", "service://Counter/add", cluster="dynamic")
    wait_until(lambda: node.call("Counter/d/get").json() == 10, timeout=90, interval=0.5)
    body: dict[str, Any] = httpx.get(
        f"{node.admin}/kafka-clusters/dynamic", params={"include_subscriptions": "true"}, timeout=30
    ).json()
    assert [s["source"] for s in body["subscriptions"]] == ["kafka://dynamic/dyn"]
