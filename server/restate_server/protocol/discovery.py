"""Service discovery, sans-IO: what to ask an SDK endpoint and how to read its manifest.

The admin API fetches ``GET {deployment}/discover``; everything about that exchange that is not I/O
lives here: the ``Accept`` header listing the manifest versions we understand, checking the content
type of the answer, decoding and validating the endpoint manifest JSON (names, types, versions), and
checking the protocol mode against the HTTP version the answer came over. The result is a plain
record of what the endpoint declared; turning it into registry schema is the schema layer's job.

Errors carry upstream's META codes and messages so the admin API can render them unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

MANIFEST_CONTENT_TYPES: Mapping[str, int] = {
    f"application/vnd.restate.endpointmanifest.v{v}+json": v for v in range(1, 5)
}
ACCEPT = ", ".join(MANIFEST_CONTENT_TYPES)
"""The ``Accept`` header value of a discovery request (manifest v1 to v4)."""

DISCOVER_PATH = "/discover"
MIN_SERVICE_PROTOCOL = 5
MAX_SERVICE_PROTOCOL = 7
MAX_PROTOCOL_VALUE = 2**31 - 1  # versions are i32 upstream

HTTP_2 = "HTTP/2.0"
HTTP_11 = "HTTP/1.1"

BIDI_STREAM = "BIDI_STREAM"
REQUEST_RESPONSE = "REQUEST_RESPONSE"

SERVICE_TYPES = ("SERVICE", "VIRTUAL_OBJECT", "WORKFLOW")
HANDLER_TYPES = ("EXCLUSIVE", "SHARED", "WORKFLOW")
ON_MAX_ATTEMPTS = ("PAUSE", "KILL")

_OLD_TS_SDKS = tuple(f"restate-sdk-typescript/1.{minor}." for minor in range(3))
_SERVICE_NAME = re.compile(r"^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9._-]*$")
_HANDLER_NAME = re.compile(r"^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9_]*$")


class DiscoveryError(Exception):
    """A failed discovery; ``code`` is upstream's META code (``None`` where upstream has none)."""

    code: str | None = None
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadResponse(DiscoveryError):
    """The endpoint answered, but not like a Restate SDK (META0013)."""

    code = "META0013"

    def __init__(self, reason: str) -> None:
        super().__init__(f"received a bad response from the SDK: {reason}")


class UndecodableManifest(DiscoveryError):
    """The manifest is not valid JSON of the expected shape (no code upstream)."""

    def __init__(self, reason: str, body: bytes) -> None:
        text = body.decode("utf-8", "replace")
        super().__init__(
            f"received a bad response from the SDK that cannot be decoded: {reason}. Discovery response: {text}"
        )


class UnsupportedProtocol(DiscoveryError):
    """The endpoint's service protocol range does not overlap ours (META0012)."""

    code = "META0012"

    def __init__(self, min_version: int, max_version: int) -> None:
        super().__init__(
            f"unsupported service protocol versions: [{min_version}, {max_version}]. Supported versions "
            f"by this runtime are [{MIN_SERVICE_PROTOCOL}, {MAX_SERVICE_PROTOCOL}]. Please upgrade the SDK "
            "and try registering again."
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class InputManifest:
    """A handler's declared input (``{}`` = no input at all)."""

    required: bool | None = None
    content_type: str | None = None
    json_schema: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputManifest:
    """A handler's declared output."""

    content_type: str | None = None
    set_content_type_if_empty: bool | None = None
    json_schema: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """Per service/handler options of manifest v3+; durations in milliseconds, ``None`` = unset."""

    documentation: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    inactivity_timeout: int | None = None
    abort_timeout: int | None = None
    journal_retention: int | None = None
    idempotency_retention: int | None = None
    workflow_completion_retention: int | None = None
    enable_lazy_state: bool | None = None
    ingress_private: bool | None = None
    retry_initial_interval: int | None = None
    retry_max_interval: int | None = None
    retry_max_attempts: int | None = None
    retry_exponentiation_factor: float | None = None
    retry_on_max_attempts: str | None = None  # "PAUSE" | "KILL"


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerManifest:
    """One handler as the SDK declared it."""

    name: str
    ty: str | None  # "EXCLUSIVE" | "SHARED" | "WORKFLOW" | None
    input: InputManifest | None
    output: OutputManifest | None
    options: Options


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceManifest:
    """One service as the SDK declared it."""

    name: str
    ty: str  # "SERVICE" | "VIRTUAL_OBJECT" | "WORKFLOW"
    handlers: tuple[HandlerManifest, ...]
    options: Options


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveredEndpoint:
    """What discovery learned about an endpoint, validated."""

    protocol_mode: str  # BIDI_STREAM | REQUEST_RESPONSE
    http_version: str  # HTTP_2 | HTTP_11
    min_protocol_version: int
    max_protocol_version: int
    sdk_version: str | None
    services: tuple[ServiceManifest, ...]
    lambda_compression: str | None = None


def manifest_version(content_type: str | None) -> int:
    """The manifest version announced by a discovery answer's content type, or :class:`BadResponse`."""
    if content_type is None:
        raise BadResponse(f"No content type header was specified. Expected one of '{ACCEPT!r}' content type.")
    version = MANIFEST_CONTENT_TYPES.get(content_type)
    if version is None:
        raise BadResponse(f"Bad content type header: {content_type!r}. Expected one of '{ACCEPT!r}'")
    return version


class _Reader:
    """Typed access to one JSON object; failures become :class:`UndecodableManifest`."""

    def __init__(self, obj: object, where: str, body: bytes) -> None:
        self._body = body
        self._where = where
        if not isinstance(obj, dict):
            self.fail(f"expected an object at {where}")
        self.obj: dict[str, Any] = obj

    def fail(self, reason: str) -> NoReturn:
        raise UndecodableManifest(reason, self._body)

    def get(self, key: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
        value = self.obj.get(key)
        if value is None:
            if required:
                self.fail(f"missing field `{key}` at {self._where}")
            return None
        is_bool = isinstance(value, bool)
        bool_wanted = kind is bool or (isinstance(kind, tuple) and bool in kind)
        if not isinstance(value, kind) or (is_bool and not bool_wanted):
            self.fail(f"invalid type for `{key}` at {self._where}")
        return value

    def millis(self, key: str) -> int | None:
        value = self.get(key, int)
        if value is not None and value < 0:
            self.fail(f"invalid value for `{key}` at {self._where}: must be >= 0")
        return value  # type: ignore[no-any-return]

    def enum(self, key: str, allowed: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.get(key, str, required=required)
        if value is not None and value not in allowed:
            self.fail(f"unknown variant `{value}` for `{key}` at {self._where}, expected one of {allowed}")
        return value  # type: ignore[no-any-return]

    def options(self) -> Options:
        metadata = self.get("metadata", dict) or {}
        if not all(isinstance(v, str) for v in metadata.values()):
            self.fail(f"invalid type for `metadata` at {self._where}")
        factor = self.get("retryPolicyExponentiationFactor", (int, float))
        return Options(
            documentation=self.get("documentation", str),
            metadata=metadata,
            inactivity_timeout=self.millis("inactivityTimeout"),
            abort_timeout=self.millis("abortTimeout"),
            journal_retention=self.millis("journalRetention"),
            idempotency_retention=self.millis("idempotencyRetention"),
            workflow_completion_retention=self.millis("workflowCompletionRetention"),
            enable_lazy_state=self.get("enableLazyState", bool),
            ingress_private=self.get("ingressPrivate", bool),
            retry_initial_interval=self.millis("retryPolicyInitialInterval"),
            retry_max_interval=self.millis("retryPolicyMaxInterval"),
            retry_max_attempts=self.millis("retryPolicyMaxAttempts"),
            retry_exponentiation_factor=None if factor is None else float(factor),
            retry_on_max_attempts=self.enum("retryPolicyOnMaxAttempts", ON_MAX_ATTEMPTS),
        )


def _handler(obj: object, where: str, body: bytes) -> HandlerManifest:
    r = _Reader(obj, where, body)
    name = r.get("name", str, required=True)
    if not _HANDLER_NAME.match(name):
        r.fail(f"invalid handler name {name!r} at {where}")
    inp = r.get("input", dict)
    out = r.get("output", dict)
    input_manifest = output_manifest = None
    if inp is not None:
        ir = _Reader(inp, f"{where}.input", body)
        input_manifest = InputManifest(
            required=ir.get("required", bool),
            content_type=ir.get("contentType", str),
            json_schema=ir.obj.get("jsonSchema"),
        )
    if out is not None:
        orr = _Reader(out, f"{where}.output", body)
        output_manifest = OutputManifest(
            content_type=orr.get("contentType", str),
            set_content_type_if_empty=orr.get("setContentTypeIfEmpty", bool),
            json_schema=orr.obj.get("jsonSchema"),
        )
    return HandlerManifest(
        name=name,
        ty=r.enum("ty", HANDLER_TYPES),
        input=input_manifest,
        output=output_manifest,
        options=r.options(),
    )


def _service(obj: object, where: str, body: bytes) -> ServiceManifest:
    r = _Reader(obj, where, body)
    name = r.get("name", str, required=True)
    if not _SERVICE_NAME.match(name):
        r.fail(f"invalid service name {name!r} at {where}")
    handlers = r.get("handlers", list, required=True)
    return ServiceManifest(
        name=name,
        ty=r.enum("ty", SERVICE_TYPES, required=True) or "SERVICE",
        handlers=tuple(_handler(h, f"{where}.handlers[{i}]", body) for i, h in enumerate(handlers)),
        options=r.options(),
    )


def parse_manifest(
    body: bytes, *, content_type: str | None, http_version: str, x_restate_server: str | None
) -> DiscoveredEndpoint:
    """Decode and validate a discovery answer received over ``http_version``."""
    manifest_version(content_type)
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise UndecodableManifest(str(e), body) from e
    r = _Reader(doc, "endpoint", body)
    min_version = r.get("minProtocolVersion", int, required=True)
    max_version = r.get("maxProtocolVersion", int, required=True)
    if min_version < 1 or max_version < 1:
        r.fail("protocol versions must be >= 1")
    services = tuple(
        _service(s, f"services[{i}]", body) for i, s in enumerate(r.get("services", list, required=True))
    )
    mode = r.enum("protocolMode", (BIDI_STREAM, REQUEST_RESPONSE))
    if mode is None:
        raise BadResponse("missing protocol mode")
    if min_version > MAX_PROTOCOL_VALUE:
        raise BadResponse(f"min protocol version must be in [1, {MAX_PROTOCOL_VALUE}]")
    if max_version > MAX_PROTOCOL_VALUE:
        raise BadResponse(f"max protocol version must be in [1, {MAX_PROTOCOL_VALUE}]")
    if min_version > max_version:
        raise BadResponse(
            "Expected min protocol version to be <= max protocol version. Received min protocol version "
            f"'{min_version}', max protocol version '{max_version}'"
        )
    if x_restate_server and x_restate_server.startswith(_OLD_TS_SDKS):
        max_version = 1  # those SDK releases announced a protocol range they did not speak
    if not (min_version <= MAX_SERVICE_PROTOCOL and max_version >= MIN_SERVICE_PROTOCOL):
        raise UnsupportedProtocol(min_version, max_version)
    # Bidi over HTTP/1.1 is trusted as upstream does: some servers and proxies can do it.
    return DiscoveredEndpoint(
        protocol_mode=mode,
        http_version=http_version,
        min_protocol_version=min_version,
        max_protocol_version=max_version,
        sdk_version=x_restate_server,
        services=services,
        lambda_compression=r.enum("lambdaCompression", ("zstd",)),
    )


def discover_url(uri: str) -> str:
    """The discovery URL of a deployment: its URI (path included) with ``/discover`` appended."""
    return uri.rstrip("/") + DISCOVER_PATH
