"""Rendering of invocation results and errors: statuses, reasons and bodies as upstream's hyper sends them."""

from __future__ import annotations

import json

import pytest
from restate_server.ingress import responses
from restate_server.log.records import Failure, Value


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        (409, 409, "Conflict"),
        (470, 470, "<none>"),
        (600, 600, "<none>"),
        (999, 999, "<none>"),
        (1000, 500, "Internal Server Error"),
    ],
    ids=["standard", "restate-470", "600", "999", "past-999"],
)
def test_terminal_failure_codes_become_statuses(code: int, status: int, reason: str) -> None:
    rendered = responses.failure(Failure(code=code, message="m"), {"x-restate-id": "inv_1"})
    assert (rendered.status, rendered.reason) == (status, reason)
    assert rendered.body is not None
    assert json.loads(bytes(rendered.body)) == {"code": code, "message": "m", "source": "invocation"}
    assert rendered.headers["x-restate-error-source"] == "invocation"


def test_empty_output_gets_its_content_type_only_if_asked() -> None:
    assert "content-type" not in responses.result(Value(content=b""), "application/json", False, {}).headers
    assert responses.result(Value(content=b""), "application/json", True, {}).headers["content-type"] == (
        "application/json"
    )
