"""Server configuration: typed options per component, loaded like upstream `restate-server` loads them.

Sources, each overriding the previous one (upstream's `crates/types/src/config_loader.rs`): built-in
defaults, the TOML file (`--config-file` or `RESTATE_CONFIG`), `RESTATE_*` environment variables
(sections joined by `__`, `_` read as `-`, values typed as TOML inline values when they parse as one),
`RUST_LOG` for `log-filter`, then the command-line flags. Key names, defaults and units follow upstream
1.7 (`crates/types/src/config/*.rs`); each field's docstring names its key.

Upstream ignores keys it does not know; this server is stricter, because a silently ignored typo is a
production outage: a key upstream knows but this server does not use yet is accepted and reported in
`LoadedConfig.unused_keys`, and any other key is a `ConfigError`. The key catalogue is
`config_keys.py`; duration and byte-size syntax is `durations.py`. Parsing is pure (argv and environ
are parameters), so tests need no process or environment of their own.
"""

from __future__ import annotations

import argparse
import os
import socket
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from restate_server import config_cli, config_keys, config_toml
from restate_server.durations import format_bytes, format_duration, parse_duration

__all__ = [
    "AdminOptions",
    "Config",
    "ConfigError",
    "IngressOptions",
    "InvokerOptions",
    "KafkaClusterOptions",
    "LoadedConfig",
    "RetryPolicyOptions",
    "SnapshotsOptions",
    "WorkerOptions",
    "dump_config",
    "format_duration",
    "load_config",
    "parse_duration",
]

LogFormat = Literal["pretty", "compact", "json"]
OnMaxAttempts = Literal["pause", "kill"]
_MIB = 1024 * 1024


class ConfigError(Exception):
    """Configuration cannot be loaded; the message names the key, its source and the reason."""

    code = "RT0002"  # upstream's error code for configuration loading errors

    def __init__(self, message: str) -> None:
        super().__init__(f"[{self.code}] configuration loading error: {message}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicyOptions:
    """`[default-retry-policy]`: how invocations are retried unless a service says otherwise.

    Defaults are upstream 1.7's `InvocationRetryPolicyOptions` (`config/invocation.rs`), which the
    real 1.7.12 server reports per service: 500ms, x2.0, 70 attempts, at most 1m apart, then pause.
    """

    initial_interval: float = 0.5
    """`initial-interval`, seconds before the first retry."""
    exponentiation_factor: float = 2.0
    """`exponentiation-factor`: each interval is the previous one times this."""
    max_attempts: int | None = 70
    """`max-attempts`, including the first; None is upstream's `"unlimited"`."""
    max_interval: float = 60.0
    """`max-interval`, seconds; the cap on the growing interval."""
    on_max_attempts: OnMaxAttempts = "pause"
    """`on-max-attempts`: pause (resumable) or kill the invocation after `max_attempts`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InvokerOptions:
    """`[worker.invoker]`: talking to service deployments (`config/worker.rs::InvokerOptions`)."""

    inactivity_timeout: float = 60.0
    """`inactivity-timeout`, seconds without messages before the invoker asks an attempt to suspend."""
    abort_timeout: float = 600.0
    """`abort-timeout`, seconds after the suspend request before the attempt is aborted (10m since 1.5)."""
    concurrent_invocations_limit: int | None = 1000
    """`concurrent-invocations-limit` per node; None means unlimited."""
    max_protocol_version: int = 7
    """Highest service-protocol version offered. Upstream 1.7 gates V7 behind the top-level
    `experimental-enable-protocol-v7` flag (default false, so V6); this server implements V7 and
    enables it by default. Setting that flag to false caps negotiation at V6."""
    message_size_limit: int = 32 * _MIB
    """`message-size-limit`, bytes; larger messages fail the invocation. Upstream's effective value is
    the smaller of this and `networking.message-size-limit` (32 MiB)."""
    message_size_warning: int = 10 * _MIB
    """`message-size-warning`, bytes; larger messages are logged."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotsOptions:
    """`[worker.snapshots]`: partition snapshots. Kept because the operator renders them."""

    destination: str | None = None
    """`destination`, e.g. `s3://bucket/prefix` or `file:///path`; None disables snapshots."""
    snapshot_interval_num_records: int | None = None
    """`snapshot-interval-num-records`: snapshot after this many applied records."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    """`[worker]`: the partition processors (`config/worker.rs::WorkerOptions`)."""

    invoker: InvokerOptions = field(default_factory=InvokerOptions)
    cleanup_interval: float = 3600.0
    """`cleanup-interval`, seconds between purges of completed invocations past their retention."""
    max_command_batch_size: int = 32
    """`max-command-batch-size`: records applied per partition-store transaction."""
    internal_queue_length: int = 1000
    """`internal-queue-length`: bound of the queues between a partition's components."""
    snapshots: SnapshotsOptions = field(default_factory=SnapshotsOptions)


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


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminOptions:
    """`[admin]`: the admin API (`config/admin.rs`)."""

    bind_address: str = "0.0.0.0:9070"
    """`bind-address` (`RESTATE_ADMIN__BIND_ADDRESS`), else `bind-ip` (inherited) and `bind-port`."""
    advertised_admin_endpoint: str | None = None
    """`advertised-admin-endpoint` (or the listener's `advertised-address`): the admin URL this node
    reports; None means derive it from the bind address."""


def _hostname() -> str:
    return socket.gethostname()


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration of one node; top-level keys are upstream's `CommonOptions`."""

    cluster_name: str = "localcluster"
    """`cluster-name` (`--cluster-name`, `RESTATE_CLUSTER_NAME`)."""
    node_name: str = field(default_factory=_hostname)
    """`node-name` (`--node-name`, `RESTATE_NODE_NAME`); defaults to the hostname."""
    base_dir: Path = Path("restate-data")
    """`base-dir` (`--base-dir`); node data lives in `base_dir / node_name`, as upstream."""
    bind_address: str = "0.0.0.0:5122"
    """`bind-address` (else `bind-ip`:`bind-port`): the node (fabric) port, also serving `/metrics`."""
    advertised_address: str = "http://127.0.0.1:5122/"
    """`advertised-address`: how other nodes reach this one (default: `advertised-host` or 127.0.0.1,
    with the bind port)."""
    default_num_partitions: int = 24
    """`default-num-partitions`: partitions at first start only (1..65535)."""
    default_journal_retention: float = 86400.0
    """`default-journal-retention`, seconds a completed invocation's journal is kept (0 = none)."""
    default_idempotency_retention: float = 86400.0
    """`default-idempotency-retention`, seconds an idempotency key is remembered after completion."""
    default_workflow_completion_retention: float = 86400.0
    """`default-workflow-completion-retention`, seconds a finished workflow's result is kept."""
    default_retry_policy: RetryPolicyOptions = field(default_factory=RetryPolicyOptions)
    request_identity_private_key_pem_file: Path | None = None
    """`worker.invoker.request-identity-private-key-pem-file` (the top-level key is the pre-1.7 alias)."""
    additional_request_headers: dict[str, str] = field(default_factory=dict)
    """`worker.invoker.additional-request-headers`; empty means upstream's default,
    `x-restate-cluster-name: <cluster-name>` (see `effective_request_headers`)."""
    shutdown_timeout: float = 60.0
    """`shutdown-timeout`, seconds to drain on SIGTERM."""
    log_filter: str = "warn,restate=info"
    """`log-filter`, RUST_LOG syntax; the `RUST_LOG` variable overrides it."""
    log_format: LogFormat = "pretty"
    """`log-format`: pretty, compact or json."""
    log_disable_ansi_codes: bool = False
    """`log-disable-ansi-codes`: no colours in pretty logs."""
    worker: WorkerOptions = field(default_factory=WorkerOptions)
    ingress: IngressOptions = field(default_factory=IngressOptions)
    admin: AdminOptions = field(default_factory=AdminOptions)

    @property
    def node_dir(self) -> Path:
        """Where this node keeps its data: `<base-dir>/<node-name>`, as upstream's NODE_BASE_DIR."""
        return self.base_dir / self.node_name

    def effective_request_headers(self) -> dict[str, str]:
        """Headers sent on every request to a deployment, with upstream's cluster-name default."""
        if self.additional_request_headers:
            return dict(self.additional_request_headers)
        visible = "".join(c for c in self.cluster_name if " " <= c <= "~")
        return {"x-restate-cluster-name": visible}


@dataclass(slots=True)
class LoadedConfig:
    """A loaded configuration plus the keys that were given but are not used by this server."""

    config: Config
    unused_keys: list[str] = field(default_factory=list)
    """Upstream keys that were set (in any source) that this server accepts and ignores."""
    config_file: Path | None = None
    """The TOML file that was read, if any."""


def load_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[LoadedConfig, argparse.Namespace]:
    """Parse flags, read the file and environment, and build the configuration (ConfigError if bad)."""
    env = dict(os.environ if environ is None else environ)
    args = config_cli.build_parser().parse_args(list(argv) if argv is not None else None)
    layers: list[config_toml.Layer] = []
    config_file: Path | None = args.config_file
    if config_file is None and env.get("RESTATE_CONFIG"):
        config_file = Path(env["RESTATE_CONFIG"])
    if config_file is not None:
        layers.append(_file_layer(config_file))
    layers.extend(_env_layers(env))
    layers.extend(config_cli.cli_layers(args))
    merged = config_toml.merge(layers)
    unused = sorted(path for path in merged if not any(_covers(used, path) for used in _USED_KEYS))
    config = _build(merged)
    return LoadedConfig(config=config, unused_keys=unused, config_file=config_file), args


def _file_layer(path: Path) -> config_toml.Layer:
    source = f"config file '{path}'"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{source} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {source}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    layer = config_toml.Layer(source)
    for key, value in config_toml.flatten(data):
        _check_known(key, f"in {source}", value)
        layer.values[key] = value
    return layer


def _env_layers(env: Mapping[str, str]) -> list[config_toml.Layer]:
    layers = []
    for name in sorted(env):
        # figment matches the prefix regardless of case; keys are lower-cased either way.
        if not name.upper().startswith("RESTATE_") or name.upper() == "RESTATE_CONFIG":
            continue
        parts = name[len("RESTATE_") :].lower().split("__")
        key = ".".join(part.replace("_", "-") for part in parts)
        if not config_keys.is_known(key):
            if config_keys.is_non_config_env_var(name.upper()):
                continue  # another tool's variable (the CLI, an SDK, a Kubernetes service link)
            _check_known(key, f"from environment variable {name}")
        layer = config_toml.Layer(f"environment variable {name}")
        value = config_toml.env_value(env[name])
        for sub_key, sub_value in config_toml.flatten(config_toml.nest(key, value)):
            _check_known(sub_key, f"from environment variable {name}", sub_value)
            # A scalar keeps its text: a string key must read `inf` or `1` as written.
            layer.values[sub_key] = sub_value
            if sub_key == key:
                layer.raw[key] = env[name]
        layers.append(layer)
    if env.get("RUST_LOG"):
        rust_log = config_toml.Layer("environment variable RUST_LOG")
        rust_log.values["log-filter"] = env["RUST_LOG"]
        layers.append(rust_log)
    return layers


def _check_known(key: str, where: str, value: object = None) -> None:
    if key in config_keys.SECTIONS and key not in config_keys.OPEN_KEYS and value is not None:
        raise ConfigError(f"'{key}' {where} must be a table of keys, not {value!r}")
    if config_keys.is_known(key):
        return
    hint = config_keys.suggest(key)
    suffix = f"; did you mean '{hint}'?" if hint else "; it is not a key of restate-server 1.7"
    raise ConfigError(f"unknown configuration key '{key}' {where}{suffix}")


def _covers(used: str, path: str) -> bool:
    return path == used or path.startswith(used + ".")


# Keys this server reads. A set key outside this list (and known upstream) is reported as unused.
_USED = (
    "cluster-name node-name base-dir bind-address bind-ip bind-port advertised-address advertised-host"
    " default-idempotency-retention default-workflow-completion-retention"
    " default-num-partitions admin.bind-ip admin.bind-port admin.advertised-address ingress.bind-ip"
    " ingress.bind-port ingress.advertised-address"
    " default-journal-retention default-retry-policy request-identity-private-key-pem-file"
    " additional-request-headers shutdown-timeout log-filter log-format log-disable-ansi-codes"
    " experimental-enable-protocol-v7 networking.message-size-limit"
    " worker.cleanup-interval worker.max-command-batch-size worker.internal-queue-length"
    " worker.snapshots.destination worker.snapshots.snapshot-interval-num-records"
    " worker.invoker.inactivity-timeout worker.invoker.abort-timeout"
    " worker.invoker.concurrent-invocations-limit worker.invoker.message-size-limit"
    " worker.invoker.message-size-warning worker.invoker.request-identity-private-key-pem-file"
    " worker.invoker.additional-request-headers ingress.bind-address ingress.advertised-ingress-endpoint"
    " ingress.kafka-clusters admin.bind-address admin.advertised-admin-endpoint"
)
_USED_KEYS = tuple(_USED.split())


def _build(merged: Mapping[str, config_toml.Setting]) -> Config:
    get = config_toml.Reader(merged, ConfigError)
    msg_limit = get.bytes("worker.invoker.message-size-limit", 32 * _MIB)
    net_limit = get.bytes("networking.message-size-limit", 32 * _MIB)
    retry = RetryPolicyOptions(
        initial_interval=get.duration("default-retry-policy.initial-interval", 0.5, non_zero=True),
        exponentiation_factor=get.number("default-retry-policy.exponentiation-factor", 2.0),
        max_attempts=get.max_attempts("default-retry-policy.max-attempts", 70),
        max_interval=get.duration("default-retry-policy.max-interval", 60.0, non_zero=True),
        on_max_attempts=get.choice("default-retry-policy.on-max-attempts", "pause", ("pause", "kill")),
    )
    invoker = InvokerOptions(
        inactivity_timeout=get.duration("worker.invoker.inactivity-timeout", 60.0),
        abort_timeout=get.duration("worker.invoker.abort-timeout", 600.0),
        concurrent_invocations_limit=get.optional_int("worker.invoker.concurrent-invocations-limit", 1000),
        max_protocol_version=7 if get.boolean("experimental-enable-protocol-v7", True) else 6,
        message_size_limit=min(msg_limit, net_limit),
        message_size_warning=get.bytes("worker.invoker.message-size-warning", 10 * _MIB),
    )
    worker = WorkerOptions(
        invoker=invoker,
        cleanup_interval=get.duration("worker.cleanup-interval", 3600.0, non_zero=True),
        max_command_batch_size=get.integer("worker.max-command-batch-size", 32, minimum=1),
        internal_queue_length=get.integer("worker.internal-queue-length", 1000, minimum=1),
        snapshots=SnapshotsOptions(
            destination=get.optional_str("worker.snapshots.destination"),
            snapshot_interval_num_records=get.optional_int("worker.snapshots.snapshot-interval-num-records"),
        ),
    )
    pem = get.optional_str("worker.invoker.request-identity-private-key-pem-file") or get.optional_str(
        "request-identity-private-key-pem-file"
    )
    headers = get.headers("worker.invoker.additional-request-headers") or get.headers(
        "additional-request-headers"
    )
    bind_ip = get.optional_str("bind-ip")
    node_bind = _bind_address(get, "", 5122, bind_ip)
    advertised_host = get.optional_str("advertised-host") or "127.0.0.1"
    return Config(
        cluster_name=get.string("cluster-name", "localcluster"),
        node_name=get.string("node-name", _hostname()),
        base_dir=Path(get.string("base-dir", "restate-data")),
        bind_address=node_bind,
        advertised_address=get.string("advertised-address", f"http://{advertised_host}:{_port(node_bind)}/"),
        default_num_partitions=get.integer("default-num-partitions", 24, minimum=1, maximum=65535),
        default_journal_retention=get.duration("default-journal-retention", 86400.0),
        default_idempotency_retention=get.duration("default-idempotency-retention", 86400.0),
        default_workflow_completion_retention=get.duration("default-workflow-completion-retention", 86400.0),
        default_retry_policy=retry,
        request_identity_private_key_pem_file=Path(pem) if pem else None,
        additional_request_headers=headers,
        shutdown_timeout=get.duration("shutdown-timeout", 60.0, non_zero=True),
        log_filter=get.string("log-filter", "warn,restate=info"),
        log_format=get.choice("log-format", "pretty", ("pretty", "compact", "json")),
        log_disable_ansi_codes=get.boolean("log-disable-ansi-codes", False),
        worker=worker,
        ingress=IngressOptions(
            bind_address=_bind_address(get, "ingress.", 8080, get.optional_str("ingress.bind-ip") or bind_ip),
            advertised_ingress_endpoint=get.optional_str("ingress.advertised-ingress-endpoint")
            or get.optional_str("ingress.advertised-address"),
            kafka_clusters=get.kafka_clusters("ingress.kafka-clusters", KafkaClusterOptions),
        ),
        admin=AdminOptions(
            bind_address=_bind_address(get, "admin.", 9070, get.optional_str("admin.bind-ip") or bind_ip),
            advertised_admin_endpoint=get.optional_str("admin.advertised-admin-endpoint")
            or get.optional_str("admin.advertised-address"),
        ),
    )


def _bind_address(get: config_toml.Reader, prefix: str, default_port: int, bind_ip: str | None) -> str:
    """A listener's `bind-address`, else `bind-ip` (inherited from the node's) and `bind-port`.

    As upstream's `ListenerOptions`: admin and ingress inherit the node's `bind-ip`, never its port.
    """
    explicit = get.optional_str(prefix + "bind-address")
    if explicit is not None:
        return explicit
    port = get.integer(prefix + "bind-port", default_port, minimum=0, maximum=65535)
    host = bind_ip or "0.0.0.0"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port(address: str) -> str:
    return address.rpartition(":")[2]


def dump_config(config: Config) -> str:
    """The effective configuration as TOML with upstream's key names (what `--dump-config` prints)."""
    retry = config.default_retry_policy
    invoker = config.worker.invoker
    top: dict[str, object] = {
        "cluster-name": config.cluster_name,
        "node-name": config.node_name,
        "base-dir": str(config.base_dir),
        "bind-address": config.bind_address,
        "advertised-address": config.advertised_address,
        "default-num-partitions": config.default_num_partitions,
        "shutdown-timeout": format_duration(config.shutdown_timeout),
        "log-filter": config.log_filter,
        "log-format": config.log_format,
        "log-disable-ansi-codes": config.log_disable_ansi_codes,
        "experimental-enable-protocol-v7": invoker.max_protocol_version >= 7,
        "default-journal-retention": format_duration(config.default_journal_retention),
        "default-idempotency-retention": format_duration(config.default_idempotency_retention),
        "default-workflow-completion-retention": format_duration(
            config.default_workflow_completion_retention
        ),
        "default-retry-policy": {
            "initial-interval": format_duration(retry.initial_interval),
            "exponentiation-factor": retry.exponentiation_factor,
            "max-attempts": "unlimited" if retry.max_attempts is None else retry.max_attempts,
            "on-max-attempts": retry.on_max_attempts,
            "max-interval": format_duration(retry.max_interval),
        },
    }
    invoker_table: dict[str, object] = {
        "inactivity-timeout": format_duration(invoker.inactivity_timeout),
        "abort-timeout": format_duration(invoker.abort_timeout),
        "message-size-warning": format_bytes(invoker.message_size_warning),
        "message-size-limit": format_bytes(invoker.message_size_limit),
    }
    if invoker.concurrent_invocations_limit is not None:
        invoker_table["concurrent-invocations-limit"] = invoker.concurrent_invocations_limit
    if config.request_identity_private_key_pem_file is not None:
        invoker_table["request-identity-private-key-pem-file"] = str(
            config.request_identity_private_key_pem_file
        )
    if config.additional_request_headers:
        invoker_table["additional-request-headers"] = dict(config.additional_request_headers)
    snapshots = config.worker.snapshots
    top["worker"] = {
        "internal-queue-length": config.worker.internal_queue_length,
        "cleanup-interval": format_duration(config.worker.cleanup_interval),
        "max-command-batch-size": config.worker.max_command_batch_size,
        "invoker": invoker_table,
        "snapshots": {
            k: v
            for k, v in (
                ("destination", snapshots.destination),
                ("snapshot-interval-num-records", snapshots.snapshot_interval_num_records),
            )
            if v is not None
        },
    }
    admin: dict[str, object] = {"bind-address": config.admin.bind_address}
    if config.admin.advertised_admin_endpoint is not None:
        admin["advertised-admin-endpoint"] = config.admin.advertised_admin_endpoint
    ingress: dict[str, object] = {"bind-address": config.ingress.bind_address}
    if config.ingress.advertised_ingress_endpoint is not None:
        ingress["advertised-ingress-endpoint"] = config.ingress.advertised_ingress_endpoint
    if config.ingress.kafka_clusters:
        ingress["kafka-clusters"] = [
            {"name": c.name, "brokers": list(c.brokers), **c.properties}
            for c in config.ingress.kafka_clusters
        ]
    top["admin"] = admin
    top["ingress"] = ingress
    return config_toml.dumps(top)
