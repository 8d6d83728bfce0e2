"""Top-level options (upstream's `CommonOptions`) and `Config`, the whole configuration of one node."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from restate_server.config import (
    admin as admin_section,
    cluster as cluster_section,
    ingress as ingress_section,
    observability as observability_section,
    worker as worker_section,
)
from restate_server.config.admin import AdminOptions
from restate_server.config.cluster import ClusterOptions
from restate_server.config.ingress import IngressOptions
from restate_server.config.layers import Reader
from restate_server.config.observability import ObservabilityOptions
from restate_server.config.units import format_duration
from restate_server.config.worker import WorkerOptions

LogFormat = Literal["pretty", "compact", "json"]
OnMaxAttempts = Literal["pause", "kill"]

USED_KEYS = (
    "cluster-name",
    "node-name",
    "base-dir",
    "bind-address",
    "bind-ip",
    "bind-port",
    "advertised-address",
    "advertised-host",
    "default-idempotency-retention",
    "default-workflow-completion-retention",
    "default-num-partitions",
    "default-journal-retention",
    "default-state-history-retention",
    "default-retry-policy",
    "request-identity-private-key-pem-file",
    "additional-request-headers",
    "shutdown-timeout",
    "log-filter",
    "log-format",
    "log-disable-ansi-codes",
    "worker.invoker.request-identity-private-key-pem-file",
    "worker.invoker.additional-request-headers",
)


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
    with the bind port). A cluster node publishes it to its peers."""
    default_num_partitions: int = 24
    """`default-num-partitions`: partitions at first start only (1..65535)."""
    default_journal_retention: float = 86400.0
    """`default-journal-retention`, seconds a completed invocation's journal is kept (0 = none)."""
    default_idempotency_retention: float = 86400.0
    """`default-idempotency-retention`, seconds an idempotency key is remembered after completion."""
    default_workflow_completion_retention: float = 86400.0
    """`default-workflow-completion-retention`, seconds a finished workflow's result is kept."""
    default_state_history_retention: float = 86400.0
    """`default-state-history-retention`, seconds the state history of virtual objects and workflows is
    kept (the Replay API); 0 turns it off. Services override it with `state_history_retention`."""
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
    observability: ObservabilityOptions = field(default_factory=ObservabilityOptions)
    cluster: ClusterOptions = field(default_factory=ClusterOptions)

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


def read(get: Reader) -> Config:
    """Every section read from the merged settings, with upstream's defaults."""
    retry = RetryPolicyOptions(
        initial_interval=get.duration("default-retry-policy.initial-interval", 0.5, non_zero=True),
        exponentiation_factor=get.number("default-retry-policy.exponentiation-factor", 2.0),
        max_attempts=get.max_attempts("default-retry-policy.max-attempts", 70),
        max_interval=get.duration("default-retry-policy.max-interval", 60.0, non_zero=True),
        on_max_attempts=get.choice("default-retry-policy.on-max-attempts", "pause", ("pause", "kill")),
    )
    pem = get.optional_str("worker.invoker.request-identity-private-key-pem-file") or get.optional_str(
        "request-identity-private-key-pem-file"
    )
    headers = get.headers("worker.invoker.additional-request-headers") or get.headers(
        "additional-request-headers"
    )
    bind_ip = get.optional_str("bind-ip")
    node_bind = get.listener_address("", 5122, bind_ip)
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
        default_state_history_retention=get.duration("default-state-history-retention", 86400.0),
        default_retry_policy=retry,
        request_identity_private_key_pem_file=Path(pem) if pem else None,
        additional_request_headers=headers,
        shutdown_timeout=get.duration("shutdown-timeout", 60.0, non_zero=True),
        log_filter=get.string("log-filter", "warn,restate=info"),
        log_format=get.choice("log-format", "pretty", ("pretty", "compact", "json")),
        log_disable_ansi_codes=get.boolean("log-disable-ansi-codes", False),
        worker=worker_section.read(get),
        ingress=ingress_section.read(get, get.optional_str("ingress.bind-ip") or bind_ip),
        admin=admin_section.read(get, get.optional_str("admin.bind-ip") or bind_ip),
        observability=observability_section.read(get),
        cluster=cluster_section.read(get),
    )


def _port(address: str) -> str:
    return address.rpartition(":")[2]


def dump(config: Config) -> dict[str, object]:
    """The effective configuration as a table with upstream's key names (for `--dump-config`)."""
    retry = config.default_retry_policy
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
        **observability_section.dump(config.observability),
        "experimental-enable-protocol-v7": config.worker.invoker.max_protocol_version >= 7,
        "default-journal-retention": format_duration(config.default_journal_retention),
        "default-idempotency-retention": format_duration(config.default_idempotency_retention),
        "default-workflow-completion-retention": format_duration(
            config.default_workflow_completion_retention
        ),
        "default-state-history-retention": format_duration(config.default_state_history_retention),
        "default-retry-policy": {
            "initial-interval": format_duration(retry.initial_interval),
            "exponentiation-factor": retry.exponentiation_factor,
            "max-attempts": "unlimited" if retry.max_attempts is None else retry.max_attempts,
            "on-max-attempts": retry.on_max_attempts,
            "max-interval": format_duration(retry.max_interval),
        },
    }
    worker = worker_section.dump(config.worker)
    invoker_table = worker["invoker"]
    assert isinstance(invoker_table, dict)
    if config.request_identity_private_key_pem_file is not None:
        invoker_table["request-identity-private-key-pem-file"] = str(
            config.request_identity_private_key_pem_file
        )
    if config.additional_request_headers:
        invoker_table["additional-request-headers"] = dict(config.additional_request_headers)
    top["worker"] = worker
    top["admin"] = admin_section.dump(config.admin)
    top["ingress"] = ingress_section.dump(config.ingress)
    top.update(cluster_section.dump(config.cluster))
    return top
