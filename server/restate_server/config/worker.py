"""`[worker]` options: the partition processors and the invoker (upstream `config/worker.rs`).

Each section module owns its options dataclasses, the keys it reads (`USED_KEYS`: a set key that no
section lists is reported as unused at start-up), how they are read from the merged settings, and how
they are printed by `--dump-config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from restate_server.config.layers import Reader
from restate_server.config.units import format_bytes, format_duration

_MIB = 1024 * 1024

USED_KEYS = (
    "experimental-enable-protocol-v7",
    "networking.message-size-limit",
    "worker.cleanup-interval",
    "worker.invoker.inactivity-timeout",
    "worker.invoker.abort-timeout",
    "worker.invoker.concurrent-invocations-limit",
    "worker.invoker.message-size-limit",
    "worker.invoker.message-size-warning",
)


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
    """`[worker.snapshots]`: partition snapshots (read for the cluster; reported unused until it uses them)."""

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
    snapshots: SnapshotsOptions = field(default_factory=SnapshotsOptions)


def read(get: Reader) -> WorkerOptions:
    msg_limit = get.bytes("worker.invoker.message-size-limit", 32 * _MIB)
    net_limit = get.bytes("networking.message-size-limit", 32 * _MIB)
    invoker = InvokerOptions(
        inactivity_timeout=get.duration("worker.invoker.inactivity-timeout", 60.0),
        abort_timeout=get.duration("worker.invoker.abort-timeout", 600.0),
        concurrent_invocations_limit=get.optional_int("worker.invoker.concurrent-invocations-limit", 1000),
        max_protocol_version=7 if get.boolean("experimental-enable-protocol-v7", True) else 6,
        message_size_limit=min(msg_limit, net_limit),
        message_size_warning=get.bytes("worker.invoker.message-size-warning", 10 * _MIB),
    )
    return WorkerOptions(
        invoker=invoker,
        cleanup_interval=get.duration("worker.cleanup-interval", 3600.0, non_zero=True),
        snapshots=SnapshotsOptions(
            destination=get.optional_str("worker.snapshots.destination"),
            snapshot_interval_num_records=get.optional_int("worker.snapshots.snapshot-interval-num-records"),
        ),
    )


def dump(worker: WorkerOptions) -> dict[str, object]:
    """The `[worker]` table of `--dump-config`; the pem file and headers are added by the caller."""
    invoker = worker.invoker
    invoker_table: dict[str, object] = {
        "inactivity-timeout": format_duration(invoker.inactivity_timeout),
        "abort-timeout": format_duration(invoker.abort_timeout),
        "message-size-warning": format_bytes(invoker.message_size_warning),
        "message-size-limit": format_bytes(invoker.message_size_limit),
    }
    if invoker.concurrent_invocations_limit is not None:
        invoker_table["concurrent-invocations-limit"] = invoker.concurrent_invocations_limit
    snapshots = worker.snapshots
    return {
        "cleanup-interval": format_duration(worker.cleanup_interval),
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
