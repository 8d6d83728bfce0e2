"""Top-level observability keys: traces to an OTLP collector and the Prometheus endpoint.

Upstream flattens these into `CommonOptions` (`config/common.rs`); they live in their own module here
because one component reads them all (`restate_server.observability`), and keeping them together
shows at a glance which of upstream's tracing keys this server honours.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from restate_server.config.layers import Reader

USED_KEYS = (
    "tracing-endpoint",
    "tracing-services-endpoint",
    "tracing-headers",
    "disable-prometheus",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservabilityOptions:
    """Where invocation traces go, and whether `/metrics` is served."""

    tracing_endpoint: str | None = None
    """`tracing-endpoint` (`RESTATE_TRACING_ENDPOINT`, `--tracing-endpoint`): OTLP/gRPC collector
    for traces, e.g. `http://localhost:4317`. None (the default) disables tracing altogether: no span
    is created on any path."""
    tracing_services_endpoint: str | None = None
    """`tracing-services-endpoint`: where the invocation traces go instead of `tracing-endpoint`
    (upstream's split between service traces and the runtime's own; every span this server
    creates is an invocation span)."""
    tracing_headers: dict[str, str] = field(default_factory=dict)
    """`tracing-headers`: headers sent with every export, e.g. an `authorization` token."""
    disable_prometheus: bool = False
    """`disable-prometheus`: no `/metrics` on the node port (default false)."""

    @property
    def services_endpoint(self) -> str | None:
        """The collector for invocation spans, if any."""
        return self.tracing_services_endpoint or self.tracing_endpoint


def read(get: Reader) -> ObservabilityOptions:
    return ObservabilityOptions(
        tracing_endpoint=get.optional_str("tracing-endpoint"),
        tracing_services_endpoint=get.optional_str("tracing-services-endpoint"),
        tracing_headers=get.headers("tracing-headers"),
        disable_prometheus=get.boolean("disable-prometheus", False),
    )


def dump(options: ObservabilityOptions) -> dict[str, object]:
    table: dict[str, object] = {"disable-prometheus": options.disable_prometheus}
    if options.tracing_endpoint is not None:
        table["tracing-endpoint"] = options.tracing_endpoint
    if options.tracing_services_endpoint is not None:
        table["tracing-services-endpoint"] = options.tracing_services_endpoint
    if options.tracing_headers:
        table["tracing-headers"] = dict(options.tracing_headers)
    return table
