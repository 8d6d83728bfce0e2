"""Kafka subscriptions through the admin API: create, list, get, delete, validation, persistence.

The server is configured with one Kafka cluster whose broker never answers: these tests are about the
admin API only (the consumers retry in the background). Consumption is `test_kafka_ingestion.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Sdk, Server

SUB_ID = re.compile(r"^sub_1[0-9a-zA-Z]{22}$")
CONFIG = """
[[ingress.kafka-clusters]]
name = "my-cluster"
brokers = ["PLAINTEXT://127.0.0.1:9"]
"""


@pytest.fixture
def kafka_server(tmp_path: Path, sdk: Sdk) -> Iterator[Server]:
    config = tmp_path / "restate.toml"
    config.write_text(CONFIG)
    server = Server(
        base_dir=tmp_path / "data", log_path=tmp_path / "server.log", env={"RESTATE_CONFIG": str(config)}
    )
    server.start()
    server.register(sdk.uri)
    yield server
    server.stop()


def create(server: Server, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.admin}/subscriptions", json=body, timeout=30)


def test_create_fills_defaults_and_lists(kafka_server: Server) -> None:
    resp = create(
        kafka_server,
        {
            "source": "kafka://my-cluster/orders",
            "sink": "service://Greeter/greet",
            "options": {"auto.offset.reset": "earliest"},
        },
    )
    assert resp.status_code == 201
    sub = resp.json()
    assert SUB_ID.match(sub["id"])
    assert sub == {
        "id": sub["id"],
        "source": "kafka://my-cluster/orders",
        "sink": "service://Greeter/greet",
        "options": {"auto.offset.reset": "earliest", "group.id": sub["id"], "client.id": "restate"},
    }
    other = create(
        kafka_server,
        {
            "source": "kafka://my-cluster/adds",
            "sink": "service://Counter/add",
            "options": {"group.id": "g", "client.id": "c"},
        },
    ).json()
    assert other["options"] == {"group.id": "g", "client.id": "c"}

    listed = httpx.get(f"{kafka_server.admin}/v4/subscriptions", timeout=30).json()
    assert listed == {"subscriptions": [sub, other]}
    by_sink = httpx.get(
        f"{kafka_server.admin}/subscriptions", params={"sink": "service://Counter/add"}, timeout=30
    )
    assert by_sink.json() == {"subscriptions": [other]}
    by_both = httpx.get(
        f"{kafka_server.admin}/subscriptions",
        params={"sink": "service://Counter/add", "source": "kafka://my-cluster/orders"},
        timeout=30,
    )
    assert by_both.json() == {"subscriptions": []}
    assert httpx.get(f"{kafka_server.admin}/subscriptions/{sub['id']}", timeout=30).json() == sub


def test_delete_then_gone_and_kept_across_restart(kafka_server: Server) -> None:
    first = create(kafka_server, {"source": "kafka://my-cluster/a", "sink": "service://Greeter/greet"}).json()
    second = create(kafka_server, {"source": "kafka://my-cluster", "sink": "service://Greeter/greet"}).json()
    assert second["source"] == "kafka://my-cluster/"  # normalised as upstream's URI type does
    deleted = httpx.delete(f"{kafka_server.admin}/subscriptions/{first['id']}", timeout=30)
    assert deleted.status_code == 202
    missing = httpx.get(f"{kafka_server.admin}/subscriptions/{first['id']}", timeout=30)
    assert missing.status_code == 404
    assert missing.json() == {
        "message": f"The requested subscription '{first['id']}' does not exist",
        "restate_code": None,
    }
    again = httpx.delete(f"{kafka_server.admin}/subscriptions/{first['id']}", timeout=30)
    assert again.status_code == 404

    kafka_server.stop()
    kafka_server.start()
    assert httpx.get(f"{kafka_server.admin}/subscriptions", timeout=30).json() == {"subscriptions": [second]}


@pytest.mark.parametrize(
    ("body", "status", "message", "code"),
    [
        (
            {"source": "kafka://other/t", "sink": "service://Greeter/greet"},
            400,
            "Kafka cluster 'other' not found. Available clusters: [\"my-cluster\"]",
            None,
        ),
        (
            {"source": "kafka://my-cluster/t", "sink": "service://Nope/greet"},
            400,
            "[META0009] invalid sink URI 'service://Nope/greet': cannot find service/handler specified in the "
            "sink URI.",
            "META0009",
        ),
        (
            {"source": "kafka://my-cluster/t", "sink": "service://Greeter/nope"},
            400,
            "[META0009] invalid sink URI 'service://Greeter/nope': cannot find service/handler specified in the "
            "sink URI.",
            "META0009",
        ),
        (
            {"source": "http://x/y", "sink": "service://Greeter/greet"},
            400,
            "[META0009] invalid source URI 'http://x/y': must have a scheme segment, with supported schemes: "
            "[kafka].",
            "META0009",
        ),
        (
            {"source": "kafka:/t", "sink": "service://Greeter/greet"},
            400,
            "[META0009] invalid source URI 'kafka:/t': source URI of Kafka type must have a authority segment "
            "containing the cluster name.",
            "META0009",
        ),
        (
            {"source": "kafka://my-cluster/t", "sink": "service:/Greeter/greet"},
            400,
            "[META0009] invalid sink URI 'service:/Greeter/greet': sink URI of service type must have a "
            "authority segment containing the service name.",
            "META0009",
        ),
        (
            {"source": "kafka://my-cluster/t", "sink": "svc://Greeter/greet"},
            400,
            "[META0009] invalid sink URI 'svc://Greeter/greet': must have a scheme segment, with supported "
            "schemes: [service].",
            "META0009",
        ),
    ],
    ids=[
        "unknown-cluster",
        "unknown-service",
        "unknown-handler",
        "bad-source-scheme",
        "no-cluster",
        "no-service",
        "bad-sink-scheme",
    ],
)
def test_validation_errors(
    kafka_server: Server, body: dict[str, str], status: int, message: str, code: str | None
) -> None:
    resp = create(kafka_server, body)
    assert resp.status_code == status
    assert resp.json() == {"message": message, "restate_code": code}


def test_secret_options_are_redacted(kafka_server: Server) -> None:
    options = {"sasl.username": "me", "sasl.password": "pw", "auto.offset.reset": "earliest"}
    sub = create(
        kafka_server,
        {"source": "kafka://my-cluster/t", "sink": "service://Greeter/greet", "options": options},
    ).json()
    assert sub["options"]["sasl.password"] == "***"
    assert sub["options"]["sasl.username"] == "***"
    assert sub["options"]["auto.offset.reset"] == "earliest"
    listed = httpx.get(f"{kafka_server.admin}/subscriptions", timeout=30).json()["subscriptions"]
    assert listed[0]["options"] == sub["options"]


def test_malformed_bodies_and_ids(kafka_server: Server) -> None:
    missing = create(kafka_server, {"source": "kafka://my-cluster/t"})
    assert missing.status_code == 422
    assert "missing field `sink`" in missing.text
    bad_uri = create(kafka_server, {"source": "not a uri", "sink": "service://Greeter/greet"})
    assert bad_uri.status_code == 422
    assert "source: invalid uri character" in bad_uri.text
    bad_id = httpx.get(f"{kafka_server.admin}/subscriptions/sub_1", timeout=30)
    assert bad_id.status_code == 400
    assert bad_id.text == "Invalid URL: Cannot parse `subscription` with value `sub_1`: bad length"


def test_without_configured_clusters_every_source_is_refused(server: Server, sdk: Sdk) -> None:
    server.register(sdk.uri)
    resp = create(server, {"source": "kafka://my-cluster/t", "sink": "service://Greeter/greet"})
    assert resp.status_code == 400
    assert resp.json()["message"] == "Kafka cluster 'my-cluster' not found. Available clusters: []"
