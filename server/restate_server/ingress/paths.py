"""Ingress URL grammar: pure parsing of request paths into targets, no I/O.

Upstream's rules (`ingress-http/src/handler/path_parsing.rs`): the path is first normalised (leading
and trailing slashes trimmed to one leading slash) and must have 2 to 7 segments. Service and
handler names, invocation ids and idempotency keys are taken as sent; only object and workflow keys
are percent-decoded, and a key that does not decode to UTF-8 is refused. Which form `/A/B/C` takes
depends on whether `A` is a keyed service, so the parser is given a lookup.

Besides the unversioned API (`/{service}/{handler}[/send]`, `/restate/invocation/…`,
`/restate/workflow/…`, `/restate/awakeables/…`), 1.7 added `/restate/call/…`, `/restate/send/…`,
`/restate/scope/{scope}/{call|send}/…`, `/restate/attach[/{id}]`, `/restate/output[/{id}]` and
`/restate/lookup`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote_to_bytes

from restate_server.ingress.errors import (
    BadAwakeablesPath,
    BadInvocationPath,
    BadPath,
    BadRestateApiPath,
    BadServicePath,
    BadWorkflowPath,
    KeyNotUtf8,
    NotFound,
    ServiceNotFound,
)

MIN_SLASHES, MAX_SLASHES = 2, 7  # `/svc/handler` .. `/restate/scope/s/call/svc/key/handler`


class Action(StrEnum):
    ATTACH = "attach"
    OUTPUT = "output"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceCall:
    """A call or send to a handler (`key` for virtual objects and workflows)."""

    service: str
    key: str | None
    handler: str
    send: bool
    scope: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ByInvocationId:
    invocation_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ByIdempotencyKey:
    service: str
    key: str | None
    handler: str
    idempotency_key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ByWorkflow:
    service: str
    key: str


Target = ByInvocationId | ByIdempotencyKey | ByWorkflow


@dataclass(frozen=True, slots=True, kw_only=True)
class InvocationRequest:
    """Attach to, or get the output of, an existing invocation; `target` None: it is in the body."""

    target: Target | None
    action: Action


@dataclass(frozen=True, slots=True, kw_only=True)
class Awakeable:
    awakeable_id: str
    action: str  # "resolve" | "reject"


@dataclass(frozen=True, slots=True)
class Lookup:
    """`POST /restate/lookup`: the invocation id of a target in the body."""


@dataclass(frozen=True, slots=True)
class Health:
    pass


Route = ServiceCall | InvocationRequest | Awakeable | Lookup | Health
IsKeyed = Callable[[str], bool | None]  # None: unknown service


def normalise(path: str) -> str:
    """Upstream's `NormalizePath::trim_trailing_slash`: one leading slash, no trailing ones."""
    if path.endswith("/") or path.startswith("//"):
        return "/" + path.strip("/")
    return path


def decode_key(segment: str) -> str:
    """A percent-encoded object key, refused (400) unless it decodes to UTF-8."""
    raw = unquote_to_bytes(segment)
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise KeyNotUtf8(raw, exc) from None


def parse(path: str, is_keyed: IsKeyed) -> Route:
    """The route of a normalised request path (without its query)."""
    if not MIN_SLASHES <= path.count("/") <= MAX_SLASHES:
        raise BadPath(f"bad path: {path}")
    segments = iter(path.split("/")[1:])
    first = next(segments)
    if first == "restate":
        return _restate(next(segments), segments, is_keyed)
    if first == "openapi":
        raise NotFound()  # upstream reserves it and does not implement it
    return _service_call(first, segments, is_keyed)


def _keyed(service: str, is_keyed: IsKeyed) -> bool:
    keyed = is_keyed(service)
    if keyed is None:
        raise ServiceNotFound(service)
    return keyed


def _service_call(service: str, rest: Iterator[str], is_keyed: IsKeyed) -> ServiceCall:
    """`/{service}/{handler}[/send]` or `/{object}/{key}/{handler}[/send]`."""
    key = decode_key(_required(rest, BadServicePath)) if _keyed(service, is_keyed) else None
    handler = _required(rest, BadServicePath)
    match next(rest, None):
        case None:
            send = False
        case "send":
            send = True
        case _:
            raise BadServicePath()
    if next(rest, None) is not None:
        raise BadServicePath()
    return ServiceCall(service=service, key=key, handler=handler, send=send)


def _required(rest: Iterator[str], error: type[Exception]) -> str:
    """The next segment (possibly empty, as `//` gives), or `error` if the path ended."""
    segment = next(rest, None)
    if segment is None:
        raise error()
    return segment


def _restate(verb: str, rest: Iterator[str], is_keyed: IsKeyed) -> Route:
    match verb:
        case "health":
            return Health()
        case "awakeables" | "a":
            awakeable_id = next(rest, None)
            action = next(rest, None)
            if awakeable_id is None or action is None:
                raise BadAwakeablesPath()
            if action not in ("resolve", "reject"):
                raise NotFound()
            return Awakeable(awakeable_id=awakeable_id, action=action)
        case "invocation":
            return _invocation(list(rest), is_keyed)
        case "workflow":
            name, key, action = next(rest, None), next(rest, None), next(rest, None)
            if name is None or key is None or action is None:
                raise BadWorkflowPath()
            return InvocationRequest(
                target=ByWorkflow(service=name, key=decode_key(key)), action=_action(action)
            )
        case "call" | "send":
            return _call_or_send(verb, None, rest, is_keyed)
        case "scope":
            scope = next(rest, None)
            inner = next(rest, None)
            if scope is None or inner is None:
                raise BadRestateApiPath()
            return _call_or_send(inner, decode_key(scope), rest, is_keyed)
        case "attach" | "output":
            invocation_id = next(rest, None)
            if next(rest, None) is not None:
                raise BadRestateApiPath()
            target = None if invocation_id is None else ByInvocationId(invocation_id=invocation_id)
            return InvocationRequest(target=target, action=Action(verb))
        case "lookup":
            if next(rest, None) is not None:
                raise BadRestateApiPath()
            return Lookup()
    raise NotFound()


def _action(segment: str) -> Action:
    try:
        return Action(segment)
    except ValueError:
        raise NotFound() from None


def _invocation(parts: list[str], is_keyed: IsKeyed) -> InvocationRequest:
    """`/restate/invocation/{id}/{action}` or `…/{service}[/{key}]/{handler}/{idempotency key}/{action}`."""
    if len(parts) < 2:
        raise BadInvocationPath()
    if len(parts) == 2:
        return InvocationRequest(target=ByInvocationId(invocation_id=parts[0]), action=_action(parts[1]))
    service, *rest = parts
    key = decode_key(rest.pop(0)) if _keyed(service, is_keyed) else None
    if len(rest) < 3:
        raise BadInvocationPath()
    handler, idempotency_key, action = rest[:3]
    target = ByIdempotencyKey(service=service, key=key, handler=handler, idempotency_key=idempotency_key)
    return InvocationRequest(target=target, action=_action(action))


def _call_or_send(verb: str, scope: str | None, rest: Iterator[str], is_keyed: IsKeyed) -> ServiceCall:
    if verb not in ("call", "send"):
        raise BadRestateApiPath()
    service = _required(rest, BadRestateApiPath)
    key = decode_key(_required(rest, BadRestateApiPath)) if _keyed(service, is_keyed) else None
    handler = _required(rest, BadRestateApiPath)
    if next(rest, None) is not None:
        raise BadRestateApiPath()
    return ServiceCall(service=service, key=key, handler=handler, send=verb == "send", scope=scope)
