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
    "worker.snapshots.destination",
    "worker.snapshots.snapshot-interval",
    "worker.snapshots.snapshot-interval-num-records",
    "worker.snapshots.num-retained",
    "worker.snapshots.aws-region",
    "worker.snapshots.aws-access-key-id",
    "worker.snapshots.aws-secret-access-key",
    "worker.snapshots.aws-session-token",
    "worker.snapshots.aws-endpoint-url",
    "worker.snapshots.aws-allow-http",
)
SNAPSHOT_SCHEMES = ("s3", "s3a", "file")


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
class ObjectStoreOptions:
    """The `aws-*` keys of `[worker.snapshots]` (upstream's flattened `ObjectStoreOptions`).

    Unset keys fall back to the standard `AWS_*` environment variables. `aws-profile` is not read.
    """

    aws_region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    aws_endpoint_url: str | None = None
    """`aws-endpoint-url`, for S3-compatible stores (MinIO, moto); plain `http://` needs `aws-allow-http`."""
    aws_allow_http: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotsOptions:
    """`[worker.snapshots]`: partition snapshots in an object store (`config/worker.rs::SnapshotsOptions`)."""

    destination: str | None = None
    """`destination`, `s3://bucket/prefix` or `file:///path`; None disables snapshots."""
    snapshot_interval: float | None = None
    """`snapshot-interval`, seconds between automatic snapshots of a partition; with
    `snapshot-interval-num-records` both must be due. None: no time condition."""
    snapshot_interval_num_records: int | None = None
    """`snapshot-interval-num-records`: snapshot a partition after this many records applied since its
    last snapshot. With neither interval set, snapshots are only taken on request."""
    num_retained: int = 1
    """`num-retained`: snapshots kept per partition; the log is trimmed only below the oldest kept."""
    object_store: ObjectStoreOptions = field(default_factory=ObjectStoreOptions)


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
        snapshots=_snapshots(get),
    )


def _snapshots(get: Reader) -> SnapshotsOptions:
    prefix = "worker.snapshots."
    destination = get.optional_str(prefix + "destination")
    if destination is not None and destination.partition("://")[0] not in SNAPSHOT_SCHEMES:
        raise get.error(
            prefix + "destination",
            "expected an s3://bucket/prefix or file:///path URL",
        )
    interval = None
    if get.optional_str(prefix + "snapshot-interval") is not None:
        interval = get.duration(prefix + "snapshot-interval", 0.0, non_zero=True)
    allow_http = None
    if get.optional_str(prefix + "aws-allow-http") is not None:
        allow_http = get.boolean(prefix + "aws-allow-http", False)
    return SnapshotsOptions(
        destination=destination,
        snapshot_interval=interval,
        snapshot_interval_num_records=get.optional_int(prefix + "snapshot-interval-num-records"),
        num_retained=get.integer(prefix + "num-retained", 1, minimum=1, maximum=255),
        object_store=ObjectStoreOptions(
            aws_region=get.optional_str(prefix + "aws-region"),
            aws_access_key_id=get.optional_str(prefix + "aws-access-key-id"),
            aws_secret_access_key=get.optional_str(prefix + "aws-secret-access-key"),
            aws_session_token=get.optional_str(prefix + "aws-session-token"),
            aws_endpoint_url=get.optional_str(prefix + "aws-endpoint-url"),
            aws_allow_http=allow_http,
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
    store = snapshots.object_store
    snapshot_interval = (
        None if snapshots.snapshot_interval is None else format_duration(snapshots.snapshot_interval)
    )
    return {
        "cleanup-interval": format_duration(worker.cleanup_interval),
        "invoker": invoker_table,
        "snapshots": {
            k: v
            for k, v in (
                ("destination", snapshots.destination),
                ("snapshot-interval", snapshot_interval),
                ("snapshot-interval-num-records", snapshots.snapshot_interval_num_records),
                ("num-retained", snapshots.num_retained),
                ("aws-region", store.aws_region),
                ("aws-access-key-id", store.aws_access_key_id),
                ("aws-secret-access-key", store.aws_secret_access_key),
                ("aws-session-token", store.aws_session_token),
                ("aws-endpoint-url", store.aws_endpoint_url),
                ("aws-allow-http", store.aws_allow_http),
            )
            if v is not None
        },
    }
