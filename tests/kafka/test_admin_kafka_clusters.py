"""`/kafka-clusters` (upstream 1.7): create, list, get, patch, delete, with upstream's statuses and bodies.

An in-process admin app over an in-memory metadata store and a configuration that defines one static
cluster (read-only through the API, listed with a deprecation note).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from restate_server.admin import kafka_clusters, subscriptions
from restate_server.admin.app import AdminContext, create_admin_app
from restate_server.config import Config, IngressOptions, KafkaClusterOptions
from restate_server.kafka import catalog
from restate_server.kafka.catalog import Subscription
from restate_server.metadata.providers.memory import MemoryMetadataStore
from restate_server.schema.registry import SchemaRegistry

Client = TestClient  # type: ignore[type-arg]
STATIC = KafkaClusterOptions(name="static", brokers=["PLAINTEXT://b1:9092", "b2:9092"], properties={"x": "y"})
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")


class App:
    def __init__(self, client: Client, store: MemoryMetadataStore) -> None:
        self.client = client
        self.store = store
        self.changes = 0

    async def json(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        resp = await self.client.request(method, path, json=body)
        text = await resp.text()
        assert resp.status == status, text
        return await resp.json() if text else None


@pytest.fixture
async def app() -> AsyncIterator[App]:
    store = MemoryMetadataStore()
    registry = await SchemaRegistry.load(store, discoverer=None)  # type: ignore[arg-type]
    config = Config(ingress=IngressOptions(kafka_clusters=[STATIC]))
    holder: list[App] = []

    def changed() -> None:
        holder[0].changes += 1

    admin_app = create_admin_app(
        AdminContext(registry=registry, config=config, metadata=store),
        extra=[kafka_clusters.routes(changed), subscriptions.routes(changed)],
    )
    client: Client = TestClient(TestServer(admin_app, host="127.0.0.1"))
    await client.start_server()
    holder.append(App(client, store))
    yield holder[0]
    await client.close()


async def test_create_list_get_patch_delete(app: App) -> None:
    properties = {"bootstrap.servers": "k:9092", "sasl.password": "hunter2", "sasl.username": "me"}
    resp = await app.client.post("/kafka-clusters", json={"name": "dyn", "properties": properties})
    assert resp.status == 201
    assert resp.headers["location"] == "kafka-clusters/dyn"
    created = await resp.json()
    assert created["properties"] == {
        "bootstrap.servers": "k:9092",
        "sasl.password": "***",
        "sasl.username": "***",
    }
    assert TIMESTAMP.match(created["created_at"])
    assert "info" not in created
    assert app.changes == 1

    listed = (await app.json("GET", "/v4/kafka-clusters"))["clusters"]
    assert [c["name"] for c in listed] == ["dyn", "static"]
    assert listed[1] == {
        "name": "static",
        "properties": {"x": "y", "metadata.broker.list": "PLAINTEXT://b1:9092,b2:9092"},
        "created_at": "1970-01-01T00:00:00Z",
        "info": [{"message": catalog.DEPRECATED_STATIC_CLUSTER}],
    }

    got = await app.json("GET", "/kafka-clusters/dyn")
    assert got == {**created, "subscriptions": []}

    patched = await app.json("PATCH", "/kafka-clusters/dyn", {"properties": {"bootstrap.servers": "other:1"}})
    assert patched["properties"] == {"bootstrap.servers": "other:1"}
    assert patched["created_at"] == created["created_at"]
    stored = await catalog.load_stored_clusters(app.store)
    assert stored[0].properties == {"bootstrap.servers": "other:1"}  # secrets are only hidden in answers

    assert (await app.client.delete("/kafka-clusters/dyn")).status == 202
    assert await catalog.load_stored_clusters(app.store) == []
    assert app.changes == 3


async def test_include_subscriptions_and_orphan_protection(app: App) -> None:
    await app.json(
        "POST", "/kafka-clusters", {"name": "dyn", "properties": {"metadata.broker.list": "k:1"}}, 201
    )
    sub = Subscription(
        id="sub_11XHoawrCiWtv8kzhEyGtsR", source="kafka://dyn/t", sink="service://S/h", options={}
    )
    other = Subscription(id="sub_11XHoawrCiWtv8kzhEyGtsS", source="kafka://static/t", sink="service://S/h")
    await catalog.update_subscriptions(app.store, lambda _: [sub, other])
    got = await app.json("GET", "/kafka-clusters/dyn?include_subscriptions=true")
    assert got["subscriptions"] == [sub.to_json()]
    refused = await app.json("DELETE", "/kafka-clusters/dyn", status=409)
    assert refused == {
        "message": f"Removing the kafka cluster 'dyn' leads to subscription '{sub.id}' being orphan. Remove the "
        "subscription first, or use the 'force' flag.",
        "restate_code": None,
    }
    assert (await app.client.delete("/kafka-clusters/dyn?force=true")).status == 202


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        (
            "POST",
            "/kafka-clusters",
            {"name": "dyn", "properties": {"client.id": "x"}},
            400,
            "kafka cluster 'dyn' properties must contain either 'bootstrap.servers' or 'metadata.broker.list'",
        ),
        (
            "POST",
            "/kafka-clusters",
            {"name": "static", "properties": {"bootstrap.servers": "k:1"}},
            409,
            "kafka cluster 'static' conflicts with static configuration. Cluster names in schema registry cannot "
            "override statically configured clusters.",
        ),
        (
            "PATCH",
            "/kafka-clusters/static",
            {"properties": {"bootstrap.servers": "k:1"}},
            409,
            "kafka cluster 'static' cannot be updated, because it was defined in the restate configuration file. "
            "Update the configuration file directly, or remove the configuration file",
        ),
        ("DELETE", "/kafka-clusters/static", None, 409, None),
        ("GET", "/kafka-clusters/nope", None, 404, "The requested Kafka cluster 'nope' does not exist"),
        (
            "PATCH",
            "/kafka-clusters/nope",
            {"properties": {"bootstrap.servers": "k:1"}},
            404,
            "not found in the schema registry: kafka cluster 'nope'",
        ),
        (
            "DELETE",
            "/kafka-clusters/nope",
            None,
            404,
            "not found in the schema registry: kafka cluster named 'nope'",
        ),
    ],
    ids=[
        "no-brokers",
        "shadows-static",
        "patch-static",
        "delete-static",
        "get-unknown",
        "patch-unknown",
        "delete-unknown",
    ],
)
async def test_errors(app: App, method: str, path: str, body: Any, status: int, message: str | None) -> None:
    answer = await app.json(method, path, body, status=status)
    assert answer["restate_code"] is None
    if message is not None:
        assert answer["message"] == message
    assert app.changes == 0


async def test_duplicate_and_malformed_creates(app: App) -> None:
    body = {"name": "dyn", "properties": {"bootstrap.servers": "k:1"}}
    await app.json("POST", "/kafka-clusters", body, 201)
    again = await app.json("POST", "/kafka-clusters", body, 409)
    assert again["message"] == "kafka cluster 'dyn' already exists in schema registry"
    missing = await app.client.post("/kafka-clusters", json={"name": "x"})
    assert missing.status == 422
    assert "missing field `properties`" in await missing.text()
    bad_name = await app.client.post("/kafka-clusters", json={"name": "a b", "properties": {}})
    assert bad_name.status == 422


async def test_subscriptions_may_name_a_cluster_created_through_the_api(app: App) -> None:
    unknown = await app.json(
        "POST", "/subscriptions", {"source": "kafka://dyn/t", "sink": "service://S/h"}, status=400
    )
    # the sink is checked first: no services are registered here
    assert unknown["restate_code"] == "META0009"
    await app.json(
        "POST",
        "/kafka-clusters",
        {"name": "dyn", "properties": {"bootstrap.servers": "k:1", "client.id": "c"}},
        201,
    )
    clusters = catalog.all_clusters(await catalog.load_stored_clusters(app.store), [STATIC])
    cluster = catalog.find_cluster(clusters, "dyn")
    assert cluster is not None
    # upstream fills group.id (options > cluster > id) and client.id only when neither sets it
    assert catalog.subscription_defaults("sub_1", {}, cluster) == {"group.id": "sub_1"}
    static = catalog.find_cluster(clusters, "static")
    assert static is not None
    assert catalog.subscription_defaults("sub_1", {"group.id": "g"}, static) == {
        "group.id": "g",
        "client.id": "restate",
    }
    assert catalog.consumer_config(
        cluster, Subscription(id="s", source="", sink="", options={"client.id": "d"})
    ) == {
        "bootstrap.servers": "k:1",
        "client.id": "d",
        "enable.auto.commit": "true",
        "enable.auto.offset.store": "false",
    }
