"""OpenTelemetry traces of invocations, exported over OTLP/gRPC to `tracing-endpoint`.

Three spans per invocation, named as upstream names its service spans (`<prefix> <Service>/<handler>`):
`ingress …` for the HTTP request (child of the caller's W3C `traceparent`, if any), `invoke …` for
the invocation from creation to its end, and one `attempt …` per attempt, whose context is sent to
the deployment as `traceparent`, so the SDK's own spans hang below it.

The invocation span must be the same across attempts, restarts and nodes, without storing anything
new: as upstream does (`ServiceInvocationSpanContext::start`), its ids are derived from the
invocation id (its span id from the invocation's uuid; its trace id from the parent's, or the
uuid when there is no parent), and its parent is the `traceparent` the ingress put among the
invocation's headers, which are journaled with its input. An unsampled parent (flags `00`) turns
tracing off for that invocation, as OpenTelemetry's parent-based sampling does.

When no endpoint is configured, `TRACER` stays None and callers test for that before building
anything: the hot path creates no span object at all.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, StatusCode, TraceFlags

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)

__all__ = [
    "TRACER",
    "Parent",
    "Span",
    "StatusCode",
    "Target",
    "Tracer",
    "configure",
    "find_traceparent",
    "header_of",
    "parse_traceparent",
]

FORCED: contextvars.ContextVar[tuple[int | None, int | None]] = contextvars.ContextVar(
    "forced_span_ids", default=(None, None)
)
"""(trace id, span id) the next span must take: the invocation span's are derived, not random."""
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$")


@dataclass(frozen=True, slots=True)
class Parent:
    """A W3C trace context: the parent of a span, or what a `traceparent` header carries."""

    trace_id: int
    span_id: int
    sampled: bool

    def header(self) -> str:
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{'01' if self.sampled else '00'}"

    def context(self) -> SpanContext:
        flags = TraceFlags(TraceFlags.SAMPLED if self.sampled else TraceFlags.DEFAULT)
        return SpanContext(self.trace_id, self.span_id, is_remote=True, trace_flags=flags)


def parse_traceparent(value: str | None) -> Parent | None:
    """The context of a valid `traceparent` header (W3C Trace Context, version 00 or later)."""
    match = _TRACEPARENT.match((value or "").strip().lower())
    if match is None or match.group(1) == "ff":
        return None
    trace_id, span_id = int(match.group(2), 16), int(match.group(3), 16)
    if trace_id == 0 or span_id == 0:
        return None
    return Parent(trace_id, span_id, sampled=bool(int(match.group(4), 16) & 1))


def find_traceparent(headers: Iterable[tuple[str, str]]) -> Parent | None:
    for name, value in headers:
        if name.lower() == "traceparent":
            return parse_traceparent(value)
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What an invocation span describes (upstream's attributes on every invocation span)."""

    invocation_id: str
    """`inv_…`"""
    uuid: bytes
    """The invocation id's 16-byte uuid: the source of the invocation span's ids."""
    service: str
    handler: str
    key: str | None = None

    @property
    def short(self) -> str:
        return (
            f"{self.service}/{self.key}/{self.handler}"
            if self.key is not None
            else f"{self.service}/{self.handler}"
        )

    def attributes(self) -> dict[str, str]:
        return {
            "rpc.service": self.service,
            "rpc.method": self.handler,
            "restate.invocation.id": self.invocation_id,
            "restate.invocation.target": self.short,
        }


class Tracer:
    """Starts the three kinds of invocation spans."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("restate_server")

    def start_ingress(self, target: Target, caller: Parent | None, client: tuple[str, int] | None) -> Span:
        """The ingress request's span; its context goes into the invocation's headers."""
        attributes: dict[str, str | int] = dict(target.attributes())
        if client is not None:
            attributes["client.socket.address"], attributes["client.socket.port"] = client
        return self._start(f"ingress {target.short}", caller, SpanKind.SERVER, attributes)

    def invocation(self, target: Target, parent: Parent | None) -> Parent:
        """The invocation span's context: the same for every attempt, on every node."""
        derived = int.from_bytes(target.uuid[8:16], "big") or 1
        trace_id = parent.trace_id if parent is not None else int.from_bytes(target.uuid[:16], "big") or 1
        return Parent(trace_id, derived, sampled=True)

    def end_invocation(self, target: Target, parent: Parent | None, started_at_ms: int) -> None:
        """Record the invocation span, from its creation until now, with its derived ids."""
        context = self.invocation(target, parent)
        token = FORCED.set((context.trace_id, context.span_id))
        try:
            span = self._start(
                f"invoke {target.short}",
                parent,
                SpanKind.INTERNAL,
                target.attributes(),
                start_time=started_at_ms * 1_000_000,
            )
        finally:
            FORCED.reset(token)
        span.end()

    def start_attempt(self, target: Target, parent: Parent | None, attempt: int) -> Span:
        """An attempt's span, child of the invocation span; send `header_of(span)` to the service."""
        attributes: dict[str, str | int] = {**target.attributes(), "restate.invocation.attempt": attempt}
        return self._start(
            f"attempt {target.short}", self.invocation(target, parent), SpanKind.CLIENT, attributes
        )

    def _start(
        self,
        name: str,
        parent: Parent | None,
        kind: SpanKind,
        attributes: Mapping[str, str | int],
        start_time: int | None = None,
    ) -> Span:
        context = (
            trace.set_span_in_context(NonRecordingSpan(parent.context())) if parent is not None else None
        )
        return self._tracer.start_span(
            name, context=context, kind=kind, attributes=attributes, start_time=start_time or time.time_ns()
        )

    def shutdown(self) -> None:
        """Export what is left (blocking: call it from a thread)."""
        self.provider.shutdown()


def header_of(span: Span) -> Parent:
    context = span.get_span_context()
    return Parent(context.trace_id, context.span_id, sampled=bool(context.trace_flags & TraceFlags.SAMPLED))


TRACER: Tracer | None = None
"""The process's tracer; None while tracing is off."""


def configure(endpoint: str | None, *, headers: Mapping[str, str], node_name: str) -> Tracer | None:
    """Start exporting to `endpoint` (OTLP/gRPC); None and nothing started when it is unset."""
    global TRACER
    if not endpoint:
        TRACER = None
        return None
    from restate_server.observability import export  # the SDK: loaded only when tracing is on

    TRACER = Tracer(export.exporting_provider(endpoint, headers=headers, node_name=node_name))
    log.info("exporting invocation traces to %s", endpoint)
    return TRACER
