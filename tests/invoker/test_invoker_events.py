"""The journal events the invoker proposes for failed attempts, shaped as upstream serialises them."""

from __future__ import annotations

import json

from restate_server.invoker import events
from restate_server.invoker.errors import AttemptError, SdkError


def test_an_sdk_error_keeps_its_code_and_message() -> None:
    event = events.transient_error(SdkError(418, "teapot", retry_after=None, behavior=0))
    assert event.ty == "TransientError"
    assert (
        event.json
        == '{"ty":"TransientError","error_code":418,"error_message":"teapot","restate_doc_error_code":"RT0007"}'
    )


def test_other_failures_are_internal_errors_with_their_rt_code() -> None:
    event = events.transient_error(AttemptError("RT0018", "the service handler X/y was not found"))
    assert json.loads(event.json) == {
        "ty": "TransientError",
        "error_code": 500,
        "error_message": "the service handler X/y was not found",
        "restate_doc_error_code": "RT0018",
    }


def test_a_pause_carries_the_last_failure() -> None:
    event = events.paused(SdkError(500, "boom", retry_after=None, behavior=0))
    assert event.ty == "Paused"
    assert json.loads(event.json) == {
        "ty": "Paused",
        "last_failure": {"error_code": 500, "error_message": "boom", "restate_doc_error_code": "RT0007"},
    }
