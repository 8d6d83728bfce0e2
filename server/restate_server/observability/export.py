"""The OpenTelemetry SDK and its OTLP/gRPC exporter, loaded only when `tracing-endpoint` is set.

Kept apart from `tracing` because importing them costs tens of milliseconds on every start (and
restart), which a node that exports no traces should not pay.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

from restate_server.observability.tracing import FORCED

EXPORT_DELAY_MILLIS = 500
"""How long finished spans wait to be batched into one export (OpenTelemetry's default is 5s)."""


class _Ids(RandomIdGenerator):
    """Random ids, unless the span being started was given derived ones."""

    def generate_span_id(self) -> int:
        forced = FORCED.get()[1]
        return forced if forced is not None else super().generate_span_id()

    def generate_trace_id(self) -> int:
        forced = FORCED.get()[0]
        return forced if forced is not None else super().generate_trace_id()


def exporting_provider(endpoint: str, *, headers: Mapping[str, str], node_name: str) -> TracerProvider:
    """A provider that batches finished spans to `endpoint` over OTLP/gRPC."""
    resource = Resource.create({"service.name": "restate-server", "service.instance.id": node_name})
    provider = TracerProvider(resource=resource, id_generator=_Ids())
    exporter = OTLPSpanExporter(
        endpoint=endpoint, insecure=endpoint.startswith("http://"), headers=dict(headers) or None
    )
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_DELAY_MILLIS))
    return provider
