"""What `sys_journal_events` records of failed attempts: upstream's `TransientErrorEvent` and `PausedEvent`.

Pure: an `AttemptError` in, a `JournalEvent` out, its JSON shaped as upstream serialises the event
(serde's `ty` tag first, optional fields left out). An SDK error keeps its own code and message; any
other failure is an internal error (500) with the RT code that explains it.
"""

from __future__ import annotations

import json
from typing import Any

from restate_server.invoker.errors import AttemptError, SdkError
from restate_server.outcomes import JournalEvent

INTERNAL = 500


def _failure(error: AttemptError) -> dict[str, Any]:
    if isinstance(error, SdkError):
        return {
            "error_code": error.error_code,
            "error_message": error.error_message,
            "restate_doc_error_code": error.code,
        }
    return {"error_code": INTERNAL, "error_message": error.message, "restate_doc_error_code": error.code}


def _dump(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def transient_error(error: AttemptError) -> JournalEvent:
    """An attempt failed and will be retried."""
    return JournalEvent(ty="TransientError", json=_dump({"ty": "TransientError", **_failure(error)}))


def paused(error: AttemptError) -> JournalEvent:
    """The retry policy gave up and paused the invocation after `error`."""
    return JournalEvent(ty="Paused", json=_dump({"ty": "Paused", "last_failure": _failure(error)}))
