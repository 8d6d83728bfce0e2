"""`[ingress]` options: the HTTP ingress and the Kafka clusters it consumes (upstream `config/ingress.rs`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from restate_server.config import connections
from restate_server.config.connections import ConnectionLimits
from restate_server.config.layers import Reader
from restate_server.config.units import format_bytes

USED_KEYS = (
    "ingress.bind-address",
    "ingress.bind-ip",
    "ingress.bind-port",
    "ingress.advertised-address",
    "ingress.advertised-ingress-endpoint",
    "ingress.kafka-clusters",
    "ingress.concurrent-api-requests-limit",
    "ingress.request-size-limit",
    "ingress.ingestion.inflight-memory-budget",
)
OWN_KEYS = connections.own_keys("ingress")
"""Keys this server reads that upstream does not have."""

DEFAULT_REQUEST_SIZE_LIMIT = 32 * 1024 * 1024  # upstream's default `networking.message-size-limit`

DEFAULT_INFLIGHT_MEMORY_BUDGET = 1024 * 1024  # upstream's default: 1 MiB


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaClusterOptions:
    """One `[[ingress.kafka-clusters]]` entry: a name, brokers, and any librdkafka property."""

    name: str
    brokers: list[str]
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class IngressOptions:
    """`[ingress]`: the HTTP ingress (`config/ingress.rs`)."""

    bind_address: str = "0.0.0.0:8080"
    """`bind-address` (`RESTATE_INGRESS__BIND_ADDRESS`), else `bind-ip` (inherited) and `bind-port`."""
    advertised_ingress_endpoint: str | None = None
    """`advertised-ingress-endpoint` (or the listener's `advertised-address`): the URL `/version`
    reports to the CLI and UI; None means derive it from the bind address."""
    kafka_clusters: list[KafkaClusterOptions] = field(default_factory=list)
    """`kafka-clusters`: brokers that subscriptions may name."""
    concurrent_api_requests_limit: int | None = None
    """`concurrent-api-requests-limit`: ingress requests served at once (a call counts until it is
    answered); past it the answer is 429. None (the default, as upstream) is unlimited."""
    request_size_limit: int = DEFAULT_REQUEST_SIZE_LIMIT
    """`request-size-limit`, bytes of a request body; a larger one is answered 413. Default 32 MiB,
    upstream's (`networking.message-size-limit`)."""
    connection_limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    """`header-read-timeout`, `idle-connection-timeout`, `max-connections` (this server's own keys)."""
    ingestion_inflight_memory_budget: int = DEFAULT_INFLIGHT_MEMORY_BUDGET
    """`ingestion.inflight-memory-budget` (`RESTATE_INGRESS__INGESTION__INFLIGHT_MEMORY_BUDGET`), bytes:
    Kafka records read but not yet durable in the log, per subscription; past it consumption pauses.
    Default 1 MiB."""


def read(get: Reader, node_bind_ip: str | None) -> IngressOptions:
    return IngressOptions(
        bind_address=get.listener_address("ingress.", 8080, node_bind_ip),
        advertised_ingress_endpoint=get.optional_str("ingress.advertised-ingress-endpoint")
        or get.optional_str("ingress.advertised-address"),
        kafka_clusters=get.kafka_clusters("ingress.kafka-clusters", KafkaClusterOptions),
        concurrent_api_requests_limit=get.optional_int("ingress.concurrent-api-requests-limit"),
        request_size_limit=get.bytes("ingress.request-size-limit", DEFAULT_REQUEST_SIZE_LIMIT, non_zero=True),
        connection_limits=connections.read(get, "ingress"),
        ingestion_inflight_memory_budget=get.bytes(
            "ingress.ingestion.inflight-memory-budget", DEFAULT_INFLIGHT_MEMORY_BUDGET
        ),
    )


def dump(ingress: IngressOptions) -> dict[str, object]:
    table: dict[str, object] = {"bind-address": ingress.bind_address}
    if ingress.advertised_ingress_endpoint is not None:
        table["advertised-ingress-endpoint"] = ingress.advertised_ingress_endpoint
    if ingress.concurrent_api_requests_limit is not None:
        table["concurrent-api-requests-limit"] = ingress.concurrent_api_requests_limit
    table["request-size-limit"] = format_bytes(ingress.request_size_limit)
    table.update(connections.dump(ingress.connection_limits))
    if ingress.kafka_clusters:
        table["kafka-clusters"] = [
            {"name": c.name, "brokers": list(c.brokers), **c.properties} for c in ingress.kafka_clusters
        ]
    if ingress.ingestion_inflight_memory_budget != DEFAULT_INFLIGHT_MEMORY_BUDGET:
        table["ingestion"] = {"inflight-memory-budget": ingress.ingestion_inflight_memory_budget}
    return table
