"""The catalogue of configuration keys upstream `restate-server` 1.7 knows.

It stands apart from the loader because it is data, not logic: the key names of upstream's configuration
schema (`restate-server-configuration-schema.json` in restatedev/docs-restate, Restate 1.7.0) plus the
keys upstream's structs accept but leave out of the schema (deprecated aliases, experimental flags, TLS,
private tuning knobs; `crates/types/src/config/*.rs` at 1.7.x), checked against what the real
`restate-server` 1.7.12 prints with `--dump-config` (`tests/data/upstream-dump-config-1.7.12.toml`). The loader uses it to tell "a key
upstream knows that this server ignores" (accepted, listed in a startup warning) from "a key upstream
does not know" (a startup error with a did-you-mean suggestion).
"""

from __future__ import annotations

import difflib
import re

# Every generic retry-policy object (`RetryPolicy` in upstream's schema) has these fields; which ones
# apply depends on `type` ("none", "fixed-delay" or "exponential").
_RETRY_POLICY = "type interval initial-interval factor max-attempts max-interval"

# Fields of upstream's `RocksDbOptions`, flattened into every section that owns a RocksDB instance.
_ROCKSDB = (
    "rocksdb-block-size rocksdb-compaction-readahead-size rocksdb-disable-direct-io-for-flush-and-compactions"
    " rocksdb-disable-direct-io-for-reads rocksdb-disable-l0-l1-compression rocksdb-disable-statistics"
    " rocksdb-disable-wal-compression rocksdb-log-keep-file-num rocksdb-log-level rocksdb-log-max-file-size"
    " rocksdb-statistics-level rocksdb-disable-auto-compactions rocksdb-periodic-compaction"
)

# Fields of a listener (`ListenerOptions`), flattened into the node, admin and ingress sections.
_LISTENER = "bind-address bind-ip bind-port advertised-address advertised-host listen-mode use-random-ports"

# Object-store credentials shared by snapshots and the object-store metadata client.
_AWS = (
    "aws-profile aws-region aws-access-key-id aws-secret-access-key aws-session-token aws-endpoint-url"
    " aws-allow-http"
)

# The HTTP and Lambda client options of the invoker (`ServiceClientOptions`). Before 1.7 they lived at
# the top level, where upstream still accepts them as deprecated aliases.
_SERVICE_CLIENT = (
    "request-identity-private-key-pem-file request-identity-expiration connect-timeout http-proxy no-proxy"
    " http2-keep-alive-interval http2-keep-alive-timeout http2-keep-alive-jitter http2-idle-connection-timeout"
    " http2-initial-connection-window-size http2-initial-stream-window-size http2-initial-max-send-streams"
    " http2-max-frame-size http2-data-frame-budget http2-streams-per-connection-limit aws-profile"
    " aws-assume-role-external-id"
    " request-compression-threshold"
)

# Section path -> its leaf keys (space separated). A section's own name is a known key too.
_SECTIONS: dict[str, str] = {
    "": " ".join(
        (
            _LISTENER,
            _ROCKSDB,
            "roles node-name force-node-id location cluster-name auto-provision base-dir"
            " default-num-partitions default-replication shutdown-timeout default-thread-pool-size"
            " default-thread-stack-size log-filter log-format log-disable-ansi-codes"
            " tracing-endpoint tracing-runtime-endpoint tracing-services-endpoint tracing-json-path"
            " tracing-filter tracing-headers tokio-console-bind-address disable-prometheus disable-telemetry"
            " disable-config-sql-table storage-high-priority-bg-threads storage-low-priority-bg-threads"
            " process-total-memory-size rocksdb-max-write-rate-per-second rocksdb-total-memory-size"
            " rocksdb-total-memtables-ratio rocksdb-low-priority-threads rocksdb-high-priority-threads"
            " rocksdb-perf-level metadata-update-interval metadata-fetch-from-peer-timeout"
            " initialization-timeout hlc-max-drift disable-controlled-idempotent-sharding"
            " gossip-tick-interval gossip-failure-threshold gossip-num-peers gossip-fd-stability-threshold"
            " gossip-suspect-interval gossip-loneliness-threshold gossip-extras-exchange-frequency"
            " gossip-time-skew-threshold",
            # Invocation defaults (upstream's `InvocationOptions`, flattened at the top level).
            "default-journal-retention max-journal-retention default-idempotency-retention"
            " max-idempotency-retention default-workflow-completion-retention"
            " max-workflow-completion-retention max-retry-policy-max-attempts invocation-yield-threshold",
            # Experimental feature flags (`experimental!` in common.rs; absent from the schema).
            "experimental-enable-vqueues experimental-enable-invoker-yield experimental-enable-protocol-v7"
            " experimental-enable-unique-random-seeds experimental-enable-migrate-scoped-tables"
            " experimental-enable-scoped-virtual-objects experimental-enable-kafka-scope"
            " experimental-enable-vqueues-migration-skip-completed"
            " experimental-enable-scoped-promise-table-migration experimental-enable-scoped-state-table-migration"
            " experimental-enable-preflight-invocation-termination-retention"
            " experimental-enable-vqueues-async-refill experimental-enable-vqueue-obsolete-cleanup",
            # Deprecated since 1.7 (moved to worker.invoker), still accepted by upstream.
            _SERVICE_CLIENT,
            "additional-request-headers http-keep-alive-options initial-max-send-streams",
            # This server's own keys, beyond upstream: the Replay API's state history.
            "default-state-history-retention",
            # The tokio-console listener, flattened with a `tokio-console-` prefix.
            " ".join("tokio-console-" + key for key in _LISTENER.split() if key != "bind-address"),
        )
    ),
    "http-keep-alive-options": "interval timeout jitter",
    "network-error-retry-policy": _RETRY_POLICY,
    "default-retry-policy": "initial-interval exponentiation-factor max-attempts on-max-attempts max-interval",
    "tls": "mode cert-file key-file ca-files require-client-auth refresh-interval allowed-subject-names",
    "metadata-client": "type addresses connect-timeout keep-alive-interval keep-alive-timeout"
    " message-size-limit path table key-prefix " + _AWS,
    "metadata-client.backoff-policy": _RETRY_POLICY,
    "metadata-client.object-store-retry-policy": _RETRY_POLICY,
    "admin": _LISTENER + " advertised-admin-endpoint concurrent-api-requests-limit"
    " deployment-routing-headers heartbeat-interval log-trim-check-interval disable-web-ui"
    " disable-cluster-controller storage-accounting-update-interval",
    "admin.query-engine": "memory-size tmp-dir query-parallelism datafusion-options",
    "admin.query-engine.rate-limiting": "rate capacity",
    "ingress": _LISTENER + " advertised-ingress-endpoint concurrent-api-requests-limit"
    " http2-max-concurrent-streams request-size-limit kafka-clusters",
    "ingress.ingestion": "inflight-memory-budget request-batch-size",
    "ingress.ingestion.connection-retry-policy": _RETRY_POLICY,
    "worker": "internal-queue-length num-timers-in-memory-limit cleanup-interval disable-scheduler"
    " max-command-batch-size max-command-batch-bytes durability-mode trim-delay-interval"
    " data-service-memory-limit rule-book-poll-interval use-multi-db-layout"
    " self-proposal-queue-memory-limit",
    "worker.storage": _ROCKSDB + " rocksdb-memory-budget rocksdb-memory-ratio rocksdb-max-file-size"
    " rocksdb-disable-wal rocksdb-disable-compact-on-deletion rocksdb-compact-on-deletions-window"
    " rocksdb-compact-on-deletions-count rocksdb-compact-on-deletions-ratio"
    " rocksdb-compact-on-deletions-min-sst-file-size rocksdb-disable-auto-memory-reclaimer"
    " rocksdb-max-background-flushes rocksdb-max-background-compactions always-commit-in-background"
    " num-partitions-to-share-memory-budget rocksdb-max-sub-compactions rocksdb-writable-file-max-buffer-size"
    " rocksdb-l0-num-compaction-trigger rocksdb-max-successive-merges vqueue-meta-full-write-probability",
    "worker.invoker": _SERVICE_CLIENT + " inactivity-timeout abort-timeout message-size-warning"
    " message-size-limit tmp-dir in-memory-queue-length-limit concurrent-invocations-limit"
    " eager-state-size-limit disable-eager-state memory-limit per-invocation-memory-limit"
    " per-invocation-initial-memory max-awaited-future-depth additional-request-headers retry-policy",
    "worker.invoker.invocation-throttling": "rate capacity",
    "worker.invoker.action-throttling": "rate capacity",
    "worker.invoker.retry-policy": _RETRY_POLICY,
    "worker.snapshots": "destination snapshot-interval snapshot-interval-num-records num-retained"
    " export-concurrency-limit enable-cleanup " + _AWS,
    "worker.snapshots.object-store-retry-policy": _RETRY_POLICY,
    "worker.shuffle": "inflight-memory-budget request-batch-size",
    "worker.shuffle.connection-retry-policy": _RETRY_POLICY,
    "bifrost": "default-provider seal-retry-interval auto-recovery-interval append-retry-min-interval"
    " append-retry-max-interval record-cache-memory-size disable-auto-improvement record-size-limit"
    " local replicated-loglet",
    "bifrost.read-retry-policy": _RETRY_POLICY,
    "bifrost.replicated-loglet": "maximum-inflight-records sequencer-inactivity-timeout"
    " log-server-rpc-timeout rpc-timeout store-timeout readahead-records read-batch-size"
    " readahead-trigger-ratio default-nodeset-size",
    "bifrost.replicated-loglet.sequencer-retry-policy": _RETRY_POLICY,
    "bifrost.replicated-loglet.log-server-retry-policy": _RETRY_POLICY,
    "metadata-server": _ROCKSDB + " type request-queue-length rocksdb-memory-budget rocksdb-memory-ratio"
    " rocksdb-disable-wal rocksdb-max-background-flushes rocksdb-max-background-compactions"
    " raft-election-tick raft-heartbeat-tick raft-tick-interval status-update-interval"
    " log-trim-threshold auto-join",
    "networking": "connect-timeout handshake-timeout http2-keep-alive-interval http2-keep-alive-timeout"
    " http2-adaptive-window disable-compression data-stream-window-size message-size-limit"
    " fabric-memory-limit",
    "networking.connect-retry-policy": _RETRY_POLICY,
    "log-server": _ROCKSDB + " rocksdb-memory-budget rocksdb-memory-ratio rocksdb-disable-wal"
    " rocksdb-disable-wal-fsync rocksdb-max-sub-compactions rocksdb-max-wal-size rocksdb-wal-dir"
    " rocksdb-max-file-size rocksdb-max-background-compactions rocksdb-enable-blob-separation"
    " rocksdb-blob-min-size rocksdb-disable-blob-compression rocksdb-disable-paranoid-checks"
    " always-commit-in-background writer-batch-commit-count writer-batch-commit-duration"
    " write-batch-commit-count write-batch-commit-bytes incoming-network-queue-length read-only in-memory"
    " rocksdb-writable-file-max-buffer-size rocksdb-l0-num-compaction-trigger rocksdb-max-open-files"
    " rocksdb-partition-sst-by-log rocksdb-partition-sst-by-loglet",
}


def _catalogue() -> frozenset[str]:
    keys: set[str] = set()
    for section, leaves in _SECTIONS.items():
        prefix = f"{section}." if section else ""
        keys.update(prefix + leaf for leaf in leaves.split())
        # Every ancestor of a section is a key (a table) too.
        parts = section.split(".") if section else []
        keys.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return frozenset(keys)


KNOWN_KEYS: frozenset[str] = _catalogue()
"""Every dotted key path upstream accepts (tables and leaves)."""

OPEN_KEYS: frozenset[str] = frozenset(
    {
        # Maps whose keys are user data (header names, librdkafka or DataFusion settings).
        "tracing-headers",
        "additional-request-headers",
        "worker.invoker.additional-request-headers",
        "admin.query-engine.datafusion-options",
        "ingress.kafka-clusters",
        # A replication property: a number, or a map of location scope to count (`{node = 2}`).
        "default-replication",
        # Deprecated sections upstream still parses loosely.
        "bifrost.local",
    }
)
"""Known keys below which any sub-key is accepted."""

# Variables with the RESTATE_ prefix that are not server configuration: the config-file flag of
# restate-server itself, the `restate` CLI, restatectl, the SDKs, and the Restate Cloud tunnel that
# upstream's operator injects. Upstream's loader passes every RESTATE_* variable to serde, which ignores
# unknown fields silently; this server ignores them too but names other unknown ones in a warning, so
# these are skipped without a word.
NON_CONFIG_ENV_VARS: frozenset[str] = frozenset(
    {
        "RESTATE_CONFIG",
        "RESTATE_HOST",
        "RESTATE_HOST_SCHEME",
        "RESTATE_ADMIN_URL",
        "RESTATE_INGRESS_URL",
        "RESTATE_AUTH_TOKEN",
        "RESTATE_BEARER_TOKEN",
        "RESTATE_ENVIRONMENT",
        "RESTATE_ENVIRONMENT_ID",
        "RESTATE_CLI_CONFIG_HOME",
        "RESTATE_CONFIG_HOME",
        "RESTATE_CLOUD_REGION",
        "RESTATE_SIGNING_PUBLIC_KEY",
        "RESTATE_TUNNEL_NAME",
        "RESTATE_IDENTITY_KEYS",
        "RESTATE_LOGGING",
        "RESTATE_JOURNAL_LOGGING",
        "RESTATE_VERSION",
        "RESTATE_PLATFORM",
        "RESTATE_ADDRESS",
    }
)

# Kubernetes injects `<SERVICE>_SERVICE_HOST`, `<SERVICE>_PORT_8080_TCP_ADDR` and friends for every
# Service in the namespace; a Service named `restate` or `restate-…` produces RESTATE_* variables.
_K8S_SERVICE_LINK = re.compile(
    r"^RESTATE(_[A-Z0-9_]+?)?_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)?)$"
)


def is_non_config_env_var(name: str) -> bool:
    """Whether a RESTATE_* variable belongs to another tool (ask only after `is_known` said no)."""
    return name in NON_CONFIG_ENV_VARS or _K8S_SERVICE_LINK.match(name) is not None


def is_known(path: str) -> bool:
    """Whether upstream accepts the dotted key `path` (inside an open map, anything goes)."""
    if path in KNOWN_KEYS:
        return True
    parts = path.split(".")
    return any(".".join(parts[:i]) in OPEN_KEYS for i in range(1, len(parts)))


def _sections() -> frozenset[str]:
    return frozenset(key.rpartition(".")[0] for key in KNOWN_KEYS if "." in key)


SECTIONS: frozenset[str] = _sections()
"""Known keys that are tables of further keys (`worker`, `worker.invoker`, ...)."""


def suggest(path: str) -> str | None:
    """The closest known key to a misspelled one, if any is close enough to be a likely typo."""
    section, _, leaf = path.rpartition(".")
    siblings = [k.rpartition(".")[2] for k in KNOWN_KEYS if k.rpartition(".")[0] == section]
    match = difflib.get_close_matches(leaf, siblings, n=1, cutoff=0.75)
    if match:
        return f"{section}.{match[0]}" if section else match[0]
    whole = difflib.get_close_matches(path, sorted(KNOWN_KEYS), n=1, cutoff=0.8)
    return whole[0] if whole else None
