"""Ingress answers in upstream's shapes: JSON bodies, error bodies with their source, invocation results.

An error is `{"code": N, "message": …, "source": "ingress"|"invocation"}` with an
`x-restate-error-source` header. An invocation's terminal failure is answered with its code as the
HTTP status when hyper would send it (100 to 999, reason `<none>` when the code has no standard
phrase, as hyper writes it), else 500; the body keeps the original code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from restate_server.log.records import Failure, Result, Value

_STANDARD = frozenset(s.value for s in HTTPStatus)


def _set_status(response: web.Response, status: int) -> None:
    response.set_status(status, None if status in _STANDARD else "<none>")


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        content_type="application/json",
        headers=headers,
    )
    _set_status(response, status)
    return response


def error(status: int, message: str, source: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(
        status,
        {"code": status, "message": message, "source": source},
        {**(headers or {}), "x-restate-error-source": source},
    )


def failure(result: Failure, headers: dict[str, str]) -> web.Response:
    """A terminal failure: its code is the status when it can be one."""
    response = json_response(
        result.code if 100 <= result.code <= 999 else 500,
        {"code": result.code, "message": result.message, "source": "invocation"},
        {**headers, "x-restate-error-source": "invocation"},
    )
    return response


def result(
    result: Result, content_type: str | None, set_if_empty: bool, headers: dict[str, str]
) -> web.Response:
    """An invocation's outcome, with the handler's output content type (upstream's output rules)."""
    if isinstance(result, Failure):
        return failure(result, headers)
    value = result.content if isinstance(result, Value) else b""
    response = web.Response(status=200, body=value, headers=headers)
    if content_type is not None and (value or set_if_empty):
        response.headers["content-type"] = content_type
    return response


def rfc3339(millis: int) -> str:
    """`idempotency-expires` as chrono's `to_rfc3339` prints milliseconds."""
    return datetime.fromtimestamp(millis / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+00:00"
