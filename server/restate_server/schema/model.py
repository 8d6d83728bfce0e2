"""The schema model: deployments, the services they offer and those services' handlers.

These records are what discovery produces, what the registry stores and what every hot-path lookup
(ingress, invoker, processor) reads, so they are immutable values: a change to the schema builds new
records and swaps them in, and a reader never sees a half-updated service.

Durations are float seconds; ``None`` means "not set here, inherit" (handler → service → server default).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

EMPTY_MAP: Mapping[str, str] = MappingProxyType({})


def _empty_map() -> Mapping[str, str]:
    return EMPTY_MAP


class ServiceType(StrEnum):
    """The three service kinds; keyed kinds route by key and lock it for exclusive handlers."""

    SERVICE = "Service"
    VIRTUAL_OBJECT = "VirtualObject"
    WORKFLOW = "Workflow"

    @property
    def keyed(self) -> bool:
        """Whether invocations of this service carry a key (object key / workflow id)."""
        return self is not ServiceType.SERVICE


class HandlerType(StrEnum):
    """Handler kind inside a keyed service (``None`` on a handler of a plain service)."""

    EXCLUSIVE = "Exclusive"
    SHARED = "Shared"
    WORKFLOW = "Workflow"


class ProtocolType(StrEnum):
    """How the invoker talks to a deployment: one bidi h2 stream, or one HTTP request per attempt leg."""

    BIDI_STREAM = "BidiStream"
    REQUEST_RESPONSE = "RequestResponse"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Per service/handler retry overrides; each ``None`` falls back to the next level."""

    initial_interval: float | None = None
    exponentiation_factor: float | None = None
    max_attempts: int | None = None
    max_interval: float | None = None
    on_max_attempts: str | None = None  # "pause" | "kill"

    @property
    def is_empty(self) -> bool:
        """True when nothing is overridden."""
        return (
            self.initial_interval is None
            and self.exponentiation_factor is None
            and self.max_attempts is None
            and self.max_interval is None
            and self.on_max_attempts is None
        )


def _media_parts(value: str) -> tuple[str, str] | None:
    """``(type, subtype)`` of a content type with parameters dropped, or ``None`` without a ``/``."""
    main, slash, sub = value.split(";", 1)[0].strip().partition("/")
    return (main, sub) if slash else None


def content_type_matches(pattern: str, actual: str) -> bool:
    """Whether ``actual`` satisfies ``pattern``: ``*/*`` and ``type/*`` wildcards, parameters ignored.

    Comparison is exact (case-sensitive), as upstream's ingress does it.
    """
    want = _media_parts(pattern)
    if want is None or want == ("*", "*"):
        return True
    got = _media_parts(actual)
    if got is None or got[0] != want[0]:
        return False
    return want[1] == "*" or got[1] == want[1]


def _debug_option(value: str | None) -> str:
    """Rust's ``{:?}`` rendering of an ``Option<String>``, which upstream puts in one error text."""
    return "None" if value is None else "Some(" + json.dumps(value) + ")"


@dataclass(frozen=True, slots=True, kw_only=True)
class InputRules:
    """What a handler accepts as request body, checked by the ingress before anything is logged.

    ``content_type=None`` means the handler declares no input (manifest ``"input": {}``); unless
    ``required``, an empty body without content type is always accepted. A JSON schema also makes an
    empty body with a content type invalid (an empty document is not JSON).
    """

    required: bool = False
    content_type: str | None = "*/*"
    json_schema: Any = None

    def validate(self, content_type: str | None, body: bytes) -> str | None:
        """The upstream error text if this request body is not acceptable, else ``None``."""
        error = "Bad configuration of the input validation rules"
        if not self.required:
            if not body and content_type is None:
                return None
            error = (
                "Expected body and content-type to be empty, "
                f"but wasn't with content-type '{_debug_option(content_type)}'"
            )
        if self.content_type is not None:
            if content_type is None:
                return "Empty content-type"
            if not content_type_matches(self.content_type, content_type):
                return f"Content-type '{content_type}' does not match '{self.content_type}'"
            if self.json_schema is not None and not body:
                return "Empty body not allowed"
            return None
        return error


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputRules:
    """What a handler returns; the content type is set on the ingress response."""

    content_type: str | None = None
    set_content_type_if_empty: bool = False
    json_schema: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Handler:
    """One handler of a service, with its own overrides of the service's options."""

    name: str
    ty: HandlerType | None = None
    input: InputRules = field(default_factory=InputRules)
    output: OutputRules = field(default_factory=OutputRules)
    public: bool = True  # resolved: the override below, else the service's visibility
    public_override: bool | None = None  # what the manifest said for this handler
    documentation: str | None = None
    metadata: Mapping[str, str] = field(default_factory=_empty_map)
    inactivity_timeout: float | None = None
    abort_timeout: float | None = None
    journal_retention: float | None = None
    idempotency_retention: float | None = None
    workflow_completion_retention: float | None = None
    enable_lazy_state: bool | None = None
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """One revision of a service, as offered by ``deployment_id``."""

    name: str
    ty: ServiceType
    handlers: Mapping[str, Handler]
    deployment_id: str
    revision: int = 1
    public: bool = True
    documentation: str | None = None
    metadata: Mapping[str, str] = field(default_factory=_empty_map)
    idempotency_retention: float | None = None
    workflow_completion_retention: float | None = None
    journal_retention: float | None = None
    inactivity_timeout: float | None = None
    abort_timeout: float | None = None
    enable_lazy_state: bool = False
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    state_history_retention: float | None = None  # admin override (seconds, 0 = off); None: server default


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """A registered service endpoint; ``services`` is what this deployment itself offered."""

    id: str
    uri: str
    protocol_type: ProtocolType
    use_http_11: bool
    additional_headers: Mapping[str, str]
    created_at: int  # epoch milliseconds
    min_protocol_version: int
    max_protocol_version: int
    sdk_version: str | None
    services: Mapping[str, Service]
    metadata: Mapping[str, str] = field(default_factory=_empty_map)
