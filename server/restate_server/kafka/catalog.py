"""The Kafka catalogue: subscriptions and Kafka clusters, kept in the metadata store.

Both the admin API (which edits them) and the consumers (which follow them) read this one definition
of the stored form, as upstream keeps both in its schema registry. Each set lives under one metadata
key as JSON and is changed with compare-and-set, so concurrent writers (admin requests, nodes) never
lose each other's writes. Clusters come from two places, as in upstream 1.7: the deprecated
``[[ingress.kafka-clusters]]`` configuration (static, read-only) and the ``/kafka-clusters`` admin API
(stored here); a stored cluster wins over a static one of the same name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from restate_server.config import KafkaClusterOptions
from restate_server.metadata.api import ABSENT, MetadataStore, PreconditionFailed

SUBSCRIPTIONS_KEY = "subscriptions"
CLUSTERS_KEY = "kafka_clusters"
_CAS_ATTEMPTS = 8  # only concurrent writers make us retry; a few rounds settle it
REDACTED = "***"

DEPRECATED_STATIC_CLUSTER = (
    "This Kafka cluster was configured in the static cluster configuration, this is deprecated. "
    "Please register it using the new Kafka Admin functionalities."
)
DUPLICATED_STATIC_CLUSTER = (
    "A Kafka cluster with the same name exists in the static cluster configuration, please remove it "
    "from the static configuration as it's deprecated."
)

# Set by the consumer itself: offsets are stored only once the invocations are durable.
FORCED_CONSUMER_OPTIONS = {"enable.auto.commit": "true", "enable.auto.offset.store": "false"}


class ConcurrentUpdateError(Exception):
    """The stored set kept changing under a compare-and-set loop."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """``kafka://<cluster>/<topic>`` consumed into ``service://<service>/<handler>``."""

    id: str
    source: str
    sink: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def cluster(self) -> str:
        return urlsplit(self.source).netloc

    @property
    def topic(self) -> str:
        return urlsplit(self.source).path.removeprefix("/")

    @property
    def service(self) -> str:
        return urlsplit(self.sink).netloc

    @property
    def handler(self) -> str:
        return urlsplit(self.sink).path.removeprefix("/")

    def to_json(self, *, redact: bool = False) -> dict[str, Any]:
        options = redacted(self.options) if redact else dict(self.options)
        return {"id": self.id, "source": self.source, "sink": self.sink, "options": options}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Subscription:
        return cls(
            id=raw["id"], source=raw["source"], sink=raw["sink"], options=dict(raw.get("options") or {})
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaCluster:
    """A named set of librdkafka properties that subscriptions refer to."""

    name: str
    properties: dict[str, str]
    created_at: int = 0
    """Milliseconds since the epoch; 0 for a cluster from the configuration file."""
    static: bool = False
    """Defined in ``[[ingress.kafka-clusters]]``: read-only through the admin API."""
    info: tuple[str, ...] = ()
    """Deprecation notes shown by the admin API (computed, never stored)."""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "properties": self.properties, "created_at": self.created_at}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> KafkaCluster:
        return cls(name=raw["name"], properties=dict(raw["properties"]), created_at=int(raw["created_at"]))

    @classmethod
    def from_options(cls, options: KafkaClusterOptions) -> KafkaCluster:
        """A static cluster: its brokers become ``metadata.broker.list``, as upstream converts them."""
        properties = {**options.properties, "metadata.broker.list": ",".join(options.brokers)}
        return cls(name=options.name, properties=properties, static=True, info=(DEPRECATED_STATIC_CLUSTER,))


T = TypeVar("T")


async def _load(
    store: MetadataStore, key: str, decode: Callable[[Mapping[str, Any]], T]
) -> tuple[int, list[T]]:
    stored = await store.get(key)
    if stored is None:
        return ABSENT, []
    return stored.version, [decode(item) for item in json.loads(stored.value)]


async def _update(
    store: MetadataStore,
    key: str,
    decode: Callable[[Mapping[str, Any]], T],
    encode: Callable[[T], dict[str, Any]],
    change: Callable[[list[T]], list[T]],
) -> list[T]:
    """Apply ``change`` with compare-and-set, retrying on concurrent writes; the new list.

    ``change`` may raise to refuse the update; it sees the freshest list on every attempt.
    """
    for _ in range(_CAS_ATTEMPTS):
        version, current = await _load(store, key, decode)
        new = change(current)
        payload = json.dumps([encode(item) for item in new], separators=(",", ":")).encode()
        try:
            await store.put(key, payload, expected_version=version)
            return new
        except PreconditionFailed:
            continue
    raise ConcurrentUpdateError(f"the {key.replace('_', ' ')} kept changing concurrently")


async def load_subscriptions(store: MetadataStore) -> list[Subscription]:
    return (await _load(store, SUBSCRIPTIONS_KEY, Subscription.from_json))[1]


async def update_subscriptions(
    store: MetadataStore, change: Callable[[list[Subscription]], list[Subscription]]
) -> list[Subscription]:
    return await _update(store, SUBSCRIPTIONS_KEY, Subscription.from_json, Subscription.to_json, change)


async def load_stored_clusters(store: MetadataStore) -> list[KafkaCluster]:
    return (await _load(store, CLUSTERS_KEY, KafkaCluster.from_json))[1]


async def update_stored_clusters(
    store: MetadataStore, change: Callable[[list[KafkaCluster]], list[KafkaCluster]]
) -> list[KafkaCluster]:
    return await _update(store, CLUSTERS_KEY, KafkaCluster.from_json, KafkaCluster.to_json, change)


def all_clusters(stored: Iterable[KafkaCluster], static: Iterable[KafkaClusterOptions]) -> list[KafkaCluster]:
    """Stored clusters first (noted when they shadow a static one), then the remaining static ones."""
    static_by_name = {options.name: options for options in static}
    merged = []
    stored_names = set()
    for cluster in stored:
        stored_names.add(cluster.name)
        if cluster.name in static_by_name:
            cluster = KafkaCluster(
                name=cluster.name,
                properties=cluster.properties,
                created_at=cluster.created_at,
                info=(DUPLICATED_STATIC_CLUSTER,),
            )
        merged.append(cluster)
    merged.extend(KafkaCluster.from_options(o) for n, o in static_by_name.items() if n not in stored_names)
    return merged


def find_cluster(clusters: Iterable[KafkaCluster], name: str) -> KafkaCluster | None:
    return next((c for c in clusters if c.name == name), None)


def has_brokers(properties: Mapping[str, str]) -> bool:
    return "bootstrap.servers" in properties or "metadata.broker.list" in properties


def subscription_defaults(
    subscription_id: str, options: Mapping[str, str], cluster: KafkaCluster
) -> dict[str, str]:
    """``group.id`` (options > cluster > subscription id) and ``client.id`` as upstream fills them."""
    filled = dict(options)
    filled["group.id"] = options.get("group.id") or cluster.properties.get("group.id") or subscription_id
    if "client.id" not in options and "client.id" not in cluster.properties:
        filled["client.id"] = "restate"
    return filled


def consumer_config(cluster: KafkaCluster, subscription: Subscription) -> dict[str, str]:
    """librdkafka properties of a subscription's consumer: the subscription's win over the cluster's."""
    return {**cluster.properties, **subscription.options, **FORCED_CONSUMER_OPTIONS}


_SENSITIVE_PARTS = (
    "password",
    "secret",
    "passphrase",
    "sasl.username",
    "sasl.jaas.config",
    "sasl.oauthbearer.config",
    "token.endpoint.url",
    "ssl.key.location",
    "ssl.key.pem",
    "keystore.location",
    "truststore.location",
    "sasl.oauthbearer.assertion.private.key",
)


def is_sensitive(key: str) -> bool:
    """Properties the admin API never shows (credentials, key material, their locations)."""
    lowered = key.lower()
    return any(part in lowered for part in _SENSITIVE_PARTS)


def redacted(properties: Mapping[str, str]) -> dict[str, str]:
    return {k: REDACTED if is_sensitive(k) else v for k, v in properties.items()}
