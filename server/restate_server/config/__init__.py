"""Server configuration: typed options per component, loaded like upstream `restate-server` loads them.

`loader` merges the sources (file, `RESTATE_*` environment, flags); `keys` is the catalogue of upstream's
keys; `layers` the typed reads; `units` the duration and byte-size syntax; `common`, `worker`, `ingress`,
`admin` and `observability` the options of each component; `connections` the limits every HTTP
listener shares.
"""

from __future__ import annotations

from restate_server.config.admin import AdminOptions, QueryEngineOptions
from restate_server.config.common import Config, RetryPolicyOptions
from restate_server.config.connections import ConnectionLimits
from restate_server.config.errors import ConfigError
from restate_server.config.ingress import IngressOptions, KafkaClusterOptions
from restate_server.config.loader import LoadedConfig, dump_config, load_config
from restate_server.config.observability import ObservabilityOptions
from restate_server.config.units import format_duration, parse_duration
from restate_server.config.worker import InvokerOptions, SnapshotsOptions, WorkerOptions

__all__ = [
    "AdminOptions",
    "ClusterOptions",
    "Config",
    "ConfigError",
    "ConnectionLimits",
    "IngressOptions",
    "InvokerOptions",
    "KafkaClusterOptions",
    "LoadedConfig",
    "ObservabilityOptions",
    "QueryEngineOptions",
    "RetryPolicyOptions",
    "SnapshotsOptions",
    "WorkerOptions",
    "dump_config",
    "format_duration",
    "load_config",
    "parse_duration",
]
