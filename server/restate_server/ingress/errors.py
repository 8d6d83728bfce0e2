"""Ingress errors, each carrying upstream's status and message; rendered once by the app.

Body shape as the real 1.7 server: `{"code": N, "message": "...", "source": "ingress"}` with an
`x-restate-error-source` header.
"""

from __future__ import annotations

from typing import ClassVar


class IngressError(Exception):
    status = 500
    source = "ingress"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(IngressError):
    status = 404

    def __init__(self, message: str = "not found") -> None:
        super().__init__(message)


class ServiceNotFound(NotFound):
    def __init__(self, service: str) -> None:
        super().__init__(
            f"service '{service}' not found, make sure to register the service before calling it."
        )


class HandlerNotFound(NotFound):
    def __init__(self, service: str, handler: str) -> None:
        super().__init__(
            f"the service '{service}' exists, but the handler '{handler}' was not found, check that the handler "
            "exists in the latest registered service version."
        )


class BadRequest(IngressError):
    status = 400


class BadPath(BadRequest):
    """A path with too few or too many segments (`bad path: /…`)."""


class _FixedBadRequest(BadRequest):
    """A 400 whose message never varies."""

    MESSAGE: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class BadServicePath(_FixedBadRequest):
    MESSAGE = "bad path, expected either /:service-name/:handler or /:object-name/:object-key/:handler"


class BadAwakeablesPath(_FixedBadRequest):
    MESSAGE = "bad path, expected either /restate/awakeables/:id/resolve or /restate/awakeables/:id/reject"


class BadInvocationPath(_FixedBadRequest):
    MESSAGE = (
        "bad path, expected either /restate/invocation/:invocation_id/output or "
        "/restate/invocation/:invocation_id/attach or /restate/invocation/:invocation_target/:idempotency_key/output "
        "or /restate/invocation/:invocation_target/:idempotency_key/attach"
    )


class BadWorkflowPath(_FixedBadRequest):
    MESSAGE = (
        "bad path, expected either /restate/workflow/:workflow_name/:workflow_key/output or "
        "/restate/workflow/:workflow_name/:workflow_key/attach"
    )


class BadRestateApiPath(_FixedBadRequest):
    MESSAGE = (
        "bad path, expected /restate/call/:service/:handler, /restate/send/:service/:handler, "
        "/restate/scope/:scope/call/:service/:handler, /restate/attach/:invocation_id, "
        "/restate/output/:invocation_id, or /restate/lookup"
    )


class KeyNotUtf8(BadRequest):
    """A percent-decoded key that is not UTF-8, described as Rust's `FromUtf8Error` debug output."""

    def __init__(self, raw: bytes, error: UnicodeDecodeError) -> None:
        incomplete = error.reason == "unexpected end of data"
        length = "None" if incomplete else f"Some({error.end - error.start})"
        super().__init__(
            f"bad path, cannot decode key: FromUtf8Error {{ bytes: {list(raw)}, error: Utf8Error {{ "
            f"valid_up_to: {error.start}, error_len: {length} }} }}"
        )


class MethodNotAllowed(IngressError):
    status = 405

    def __init__(self) -> None:
        super().__init__("method not allowed")


class NotReady(IngressError):
    status = 470

    def __init__(self) -> None:
        super().__init__("the invocation exists but has not completed yet")


class PayloadTooLarge(IngressError):
    """A body past `ingress.request-size-limit` (upstream: the body's `LengthLimitError`)."""

    status = 413

    def __init__(self) -> None:
        super().__init__("cannot read body: length limit exceeded")


class TooManyRequests(IngressError):
    """Past `ingress.concurrent-api-requests-limit`."""

    status = 429

    def __init__(self) -> None:
        super().__init__("too many requests, the ingress is overloaded. Retry later.")


class Unavailable(IngressError):
    status = 503

    def __init__(self, message: str = "unavailable") -> None:
        super().__init__(message)
