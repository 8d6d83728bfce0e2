"""OpenTelemetry traces of real invocations, received by a small OTLP/gRPC collector in the test.

The collector is the real opentelemetry-proto `TraceService` served by grpcio on loopback; the
server exports to it because `tracing-endpoint` names it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from harness import Sdk, Server, wait_until
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@dataclass
class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span exported to it."""

    spans: list[trace_pb2.Span] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def Export(self, request, context):
        with self.lock:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def named(self, prefix: str) -> list[trace_pb2.Span]:
        with self.lock:
            return [s for s in self.spans if s.name.startswith(prefix)]


@pytest.fixture
def collector() -> Iterator[tuple[Collector, int]]:
    servicer = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(grace=None)


@pytest.fixture
def traced(tmp_path: Path, collector: tuple[Collector, int], sdk: Sdk) -> Iterator[Server]:
    _, port = collector
    server = Server(
        base_dir=tmp_path / "data",
        log_path=tmp_path / "server.log",
        env={"RESTATE_TRACING_ENDPOINT": f"http://127.0.0.1:{port}"},
    )
    server.start()
    server.register(sdk.uri)
    yield server
    server.stop()


def _attr(span: trace_pb2.Span, key: str) -> str:
    return next(a.value.string_value for a in span.attributes if a.key == key)


def test_invocation_and_attempt_spans_reach_the_collector_with_the_callers_parent(
    traced: Server, collector: tuple[Collector, int]
) -> None:
    spans, _ = collector
    caller = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    resp = traced.call("Greeter/attempt_header", "traceparent", headers={"traceparent": caller})
    assert resp.status_code == 200
    seen_by_service = resp.json()
    # the service got a W3C traceparent in the caller's trace, pointing at a span of ours
    version, trace_id, span_id, flags = seen_by_service.split("-")
    assert (version, trace_id, flags) == ("00", CALLER_TRACE, "01")
    assert span_id != CALLER_SPAN

    wait_until(
        lambda: spans.named("invoke ") and spans.named("attempt ") and spans.named("ingress "), timeout=20
    )
    (ingress,) = spans.named("ingress Greeter/attempt_header")
    (invoke,) = spans.named("invoke Greeter/attempt_header")
    (attempt,) = spans.named("attempt Greeter/attempt_header")
    for span in (ingress, invoke, attempt):
        assert span.trace_id.hex() == CALLER_TRACE
        assert _attr(span, "restate.invocation.id") == resp.headers["x-restate-id"]
        assert _attr(span, "rpc.service") == "Greeter"
    assert ingress.parent_span_id.hex() == CALLER_SPAN  # an incoming traceparent is the parent
    assert invoke.parent_span_id == ingress.span_id
    assert attempt.parent_span_id == invoke.span_id
    assert attempt.span_id.hex() == span_id  # the service's parent is the attempt's span


def test_every_attempt_gets_a_span_and_one_invocation_span_without_a_caller_trace(
    traced: Server, collector: tuple[Collector, int]
) -> None:
    spans, _ = collector
    resp = traced.call("Greeter/flaky_once", "z")  # the first attempt fails, the second answers
    assert resp.json() == "Hello z!"
    invocation_id = resp.headers["x-restate-id"]

    def mine(prefix: str) -> list[trace_pb2.Span]:
        return [s for s in spans.named(prefix) if _attr(s, "restate.invocation.id") == invocation_id]

    wait_until(lambda: len(mine("attempt ")) == 2 and mine("invoke "), timeout=20)
    (invoke,) = mine("invoke Greeter/flaky_once")
    failed, succeeded = sorted(mine("attempt Greeter/flaky_once"), key=lambda s: s.start_time_unix_nano)
    assert failed.status.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert succeeded.status.code != trace_pb2.Status.STATUS_CODE_ERROR
    assert failed.parent_span_id == succeeded.parent_span_id == invoke.span_id
    assert failed.trace_id == succeeded.trace_id == invoke.trace_id
    assert invoke.start_time_unix_nano <= failed.start_time_unix_nano


def test_an_unsampled_caller_trace_is_not_recorded(traced: Server, collector: tuple[Collector, int]) -> None:
    spans, _ = collector
    unsampled = f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"
    resp = traced.call("Greeter/attempt_header", "traceparent", headers={"traceparent": unsampled})
    assert resp.status_code == 200
    assert resp.content in (b"", b"null")  # no attempt span, so no traceparent to the service
    sampled = traced.call("Greeter/greet", "after")  # a later traced call flushes the exporter
    assert sampled.status_code == 200
    wait_until(lambda: spans.named("invoke Greeter/greet"), timeout=20)
    assert not spans.named("ingress Greeter/attempt_header")
    assert not spans.named("attempt Greeter/attempt_header")


def test_tracing_is_off_without_an_endpoint(deployed: Server) -> None:
    resp = deployed.call("Greeter/attempt_header", "traceparent")
    assert resp.status_code == 200
    assert resp.content in (b"", b"null")  # no tracer: no traceparent is sent
