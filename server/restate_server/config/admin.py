"""`[admin]` options: the admin REST API and its SQL query engine (upstream `config/admin.rs`,
`config/query_engine.rs`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from restate_server.config import connections
from restate_server.config.connections import ConnectionLimits
from restate_server.config.layers import Reader
from restate_server.config.units import format_bytes, format_duration

USED_KEYS = (
    "admin.bind-address",
    "admin.bind-ip",
    "admin.bind-port",
    "admin.advertised-address",
    "admin.advertised-admin-endpoint",
    "admin.concurrent-api-requests-limit",
    "admin.disable-web-ui",
    "admin.query-engine.memory-size",
    "admin.query-engine.tmp-dir",
    "admin.query-engine.query-parallelism",
    "admin.log-trim-check-interval",
)
OWN_KEYS = connections.own_keys("admin")
"""Keys this server reads that upstream does not have."""

DEFAULT_QUERY_MEMORY = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryEngineOptions:
    """`[admin.query-engine]`: bounds on `POST /query`."""

    memory_size: int = DEFAULT_QUERY_MEMORY
    """`memory-size`, bytes DataFusion may use for all running queries together (sorts, joins,
    aggregations); each running query gets an equal share, and a query's answer may hold as much again.
    A query past its share fails with "Resources exhausted". Default 256 MiB, not upstream's 4 GiB:
    this server runs in pods of about 1 GiB (the example cluster requests 1Gi), and introspection
    queries over tens of thousands of invocations fit in far less."""
    tmp_dir: str | None = None
    """`tmp-dir`: where sorts past the memory share may spill. Unset (the default) means no spilling:
    a query never writes to disk unless the operator chose where."""
    query_parallelism: int = 2
    """`query-parallelism`: how many queries run at once. More wait for a slot (at most eight per
    slot, then 429). Default 2: each query runs on its own thread, and a node
    usually has two cores for everything else too."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminOptions:
    """`[admin]`: the admin API (`config/admin.rs`)."""

    bind_address: str = "0.0.0.0:9070"
    """`bind-address` (`RESTATE_ADMIN__BIND_ADDRESS`), else `bind-ip` (inherited) and `bind-port`."""
    advertised_admin_endpoint: str | None = None
    """`advertised-admin-endpoint` (or the listener's `advertised-address`): the admin URL a cluster
    node publishes to its peers; None means derive it from the bind address."""
    concurrent_api_requests_limit: int | None = None
    """`concurrent-api-requests-limit`: admin requests served at once; past it the answer is 429.
    None (the default, as upstream) is unlimited."""
    disable_web_ui: bool = False
    """`disable-web-ui`: no web UI under `/ui/` (default false)."""
    query_engine: QueryEngineOptions = field(default_factory=QueryEngineOptions)
    log_trim_check_interval: float = 60.0
    """`log-trim-check-interval`, seconds between checks that trim each partition's log up to what
    every replica's store (and, with snapshots, the latest snapshot) holds. Default 1m, not upstream's
    1h: in a cluster the log lives in etcd, whose space is only reclaimed by trimming and compaction.
    `0` turns trimming off."""
    connection_limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    """`header-read-timeout`, `idle-connection-timeout`, `max-connections` (this server's own keys)."""


def read(get: Reader, node_bind_ip: str | None) -> AdminOptions:
    return AdminOptions(
        bind_address=get.listener_address("admin.", 9070, node_bind_ip),
        advertised_admin_endpoint=get.optional_str("admin.advertised-admin-endpoint")
        or get.optional_str("admin.advertised-address"),
        concurrent_api_requests_limit=get.optional_int("admin.concurrent-api-requests-limit"),
        disable_web_ui=get.boolean("admin.disable-web-ui", False),
        query_engine=QueryEngineOptions(
            memory_size=get.bytes("admin.query-engine.memory-size", DEFAULT_QUERY_MEMORY, non_zero=True),
            tmp_dir=get.optional_str("admin.query-engine.tmp-dir"),
            query_parallelism=get.integer("admin.query-engine.query-parallelism", 2, minimum=1),
        ),
        log_trim_check_interval=get.duration("admin.log-trim-check-interval", 60.0),
        connection_limits=connections.read(get, "admin"),
    )


def dump(admin: AdminOptions) -> dict[str, object]:
    table: dict[str, object] = {"bind-address": admin.bind_address, "disable-web-ui": admin.disable_web_ui}
    if admin.advertised_admin_endpoint is not None:
        table["advertised-admin-endpoint"] = admin.advertised_admin_endpoint
    if admin.concurrent_api_requests_limit is not None:
        table["concurrent-api-requests-limit"] = admin.concurrent_api_requests_limit
    table["log-trim-check-interval"] = format_duration(admin.log_trim_check_interval)
    table.update(connections.dump(admin.connection_limits))
    engine = admin.query_engine
    query_engine: dict[str, object] = {
        "memory-size": format_bytes(engine.memory_size),
        "query-parallelism": engine.query_parallelism,
    }
    if engine.tmp_dir is not None:
        query_engine["tmp-dir"] = engine.tmp_dir
    table["query-engine"] = query_engine
    return table
