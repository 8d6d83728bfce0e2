"""Admin API errors and their one rendering: ``{"message": …, "restate_code": …}`` with upstream's status.

Handlers raise; the middleware in :mod:`restate_server.admin.app` renders. Schema and discovery
errors are translated here, at the boundary, so handlers never branch on error kinds. A few failures
upstream answers in plain text (axum's extractor rejections, the ``/v1`` refusal) are
:class:`PlainTextError`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from restate_server.protocol import discovery
from restate_server.schema import errors as schema_errors
from restate_server.worker.errors import WorkerUnavailable

JSON_CONTENT_TYPE = "application/json"


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A compact JSON response with the headers upstream's admin API sends."""
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    response = web.Response(body=data, status=status, content_type=JSON_CONTENT_TYPE, headers=headers)
    response.headers["vary"] = "accept-encoding"
    return response


class AdminError(Exception):
    """An error answered as ``ErrorDescriptionResponse``."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers: dict[str, str] = {}

    def response(self) -> web.Response:
        """The rendered error."""
        return json_response(
            {"message": self.message, "restate_code": self.code}, status=self.status, headers=self.headers
        )


class PlainTextError(Exception):
    """An error upstream answers with a plain-text body."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text

    def response(self) -> web.Response:
        """The rendered error."""
        return web.Response(status=self.status, text=self.text)


def invalid_field(field: str, reason: str) -> AdminError:
    """``InvalidField``: 400 ``The request field 'x' is invalid. Reason: …``."""
    return AdminError(400, f"The request field '{field}' is invalid. Reason: {reason}")


def not_found(what: str, name: str) -> AdminError:
    """404 for an unknown deployment, service or subscription."""
    return AdminError(404, f"The requested {what} '{name}' does not exist")


def conflict(message: str) -> AdminError:
    """409 ``Conflict: …``."""
    return AdminError(409, f"Conflict: {message}")


def from_schema(error: schema_errors.SchemaError) -> AdminError:
    """A schema registry error, decorated with its code as upstream prints coded errors."""
    return AdminError(error.status, error.decorated(), error.code)


def from_discovery(error: discovery.DiscoveryError) -> AdminError:
    """A discovery failure: always 500, as upstream maps them."""
    message = f"[{error.code}] {error.message}" if error.code else error.message
    return AdminError(500, message, error.code)


def translate(error: Exception) -> AdminError | PlainTextError | None:
    """The response form of an error raised by a handler, or ``None`` if it is not ours."""
    if isinstance(error, AdminError | PlainTextError):
        return error
    if isinstance(error, schema_errors.SchemaError):
        return from_schema(error)
    if isinstance(error, discovery.DiscoveryError):
        return from_discovery(error)
    if isinstance(error, WorkerUnavailable):  # not taken (no leader, the log refused): retry
        return AdminError(503, str(error))
    return None
