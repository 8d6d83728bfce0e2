"""Ingress errors, each carrying upstream's status and message; rendered once by the app.

Body shape as the real 1.7 server: `{"code": N, "message": "...", "source": "ingress"}` with an
`x-restate-error-source` header.
"""

from __future__ import annotations


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
    def __init__(
        self,
        message: str = "bad path, expected either /:service-name/:handler or "
        "/:object-name/:object-key/:handler",
    ) -> None:
        super().__init__(message)


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
