"""Ingress URL grammar: pure parsing of request paths into targets, no I/O.

Which form `/A/B/C` takes depends on whether `A` is a keyed service, so the parser is given a
lookup; the rest is counting segments as upstream's `path_parsing.rs` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from restate_server.ingress.errors import BadPath, NotFound, ServiceNotFound


@dataclass(frozen=True, slots=True)
class ServiceCall:
    service: str
    key: str | None
    handler: str
    send: bool


@dataclass(frozen=True, slots=True)
class InvocationTarget:
    """`/restate/invocation/...` and `/restate/workflow/...`: attach or output."""

    invocation_id: str | None
    service: str | None
    key: str | None
    handler: str | None
    idempotency_key: str | None
    workflow: bool
    action: str  # "attach" | "output"


@dataclass(frozen=True, slots=True)
class Awakeable:
    awakeable_id: str
    action: str  # "resolve" | "reject"


@dataclass(frozen=True, slots=True)
class Health:
    pass


Route = ServiceCall | InvocationTarget | Awakeable | Health
IsKeyed = Callable[[str], bool | None]  # None: unknown service


def parse(path: str, is_keyed: IsKeyed) -> Route:
    segments = [unquote(s) for s in path.split("/")[1:]]
    if segments and segments[-1] == "" and len(segments) > 1:
        segments = segments[:-1]
    if not segments or segments == [""]:
        raise NotFound()
    if segments[0] == "restate":
        return _parse_restate(segments[1:], is_keyed)
    service = segments[0]
    keyed = is_keyed(service)
    if keyed is None:
        raise ServiceNotFound(service)
    rest = segments[1:]
    send = bool(rest) and rest[-1] == "send"
    if keyed:
        if len(rest) == 3 and send:
            return ServiceCall(service, rest[0], rest[1], True)
        if len(rest) == 2:
            return ServiceCall(service, rest[0], rest[1], False)
        raise BadPath()
    if len(rest) == 2 and send:
        return ServiceCall(service, None, rest[0], True)
    if len(rest) == 1:
        return ServiceCall(service, None, rest[0], False)
    raise BadPath()


def _parse_restate(rest: list[str], is_keyed: IsKeyed) -> Route:
    if rest == ["health"]:
        return Health()
    if len(rest) == 3 and rest[0] in ("awakeables", "a") and rest[2] in ("resolve", "reject"):
        return Awakeable(rest[1], rest[2])
    if len(rest) >= 3 and rest[0] == "invocation" and rest[-1] in ("attach", "output"):
        body = rest[1:-1]
        if len(body) == 1:
            return InvocationTarget(body[0], None, None, None, None, False, rest[-1])
        if len(body) == 3:
            return InvocationTarget(None, body[0], None, body[1], body[2], False, rest[-1])
        if len(body) == 4:
            return InvocationTarget(None, body[0], body[1], body[2], body[3], False, rest[-1])
        raise BadPath("bad invocation path")
    if len(rest) == 4 and rest[0] == "workflow" and rest[-1] in ("attach", "output"):
        return InvocationTarget(None, rest[1], rest[2], None, None, True, rest[-1])
    raise NotFound()
