"""Invocation status rows for tests that need stored invocations but few of their fields."""

from __future__ import annotations

from typing import Any

from restate_server.storage.status import InvocationStatus, Status


def greeter_status(state: Status, **fields: Any) -> InvocationStatus:
    """A `Greeter/greet` invocation from the ingress in ``state``; ``fields`` override the rest."""
    row: dict[str, Any] = {
        "status": state,
        "service": "Greeter",
        "handler": "greet",
        "key": None,
        "service_ty": "Service",
        "handler_ty": None,
        "created_at": 0,
        "modified_at": 0,
        "source": ["ingress", None, None, None],
    }
    row.update(fields)
    return InvocationStatus(**row)
