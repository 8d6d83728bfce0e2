"""API errors rendered as Kubernetes ``Status`` objects, the form every client expects."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failed API call: the HTTP code and the ``reason`` of the Status object go on the exception."""

    def __init__(self, code: int, reason: str, message: str, *, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> dict[str, Any]:
        """The ``Status`` body of this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def not_found(resource: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{resource} "{name}" not found', details={"name": name, "kind": resource}
    )


def already_exists(resource: str, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{resource} "{name}" already exists', details={"name": name, "kind": resource}
    )


def conflict(resource: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource} "{name}": {why}',
        details={"name": name, "kind": resource},
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(resource: str, name: str, message: str, causes: list[str] | None = None) -> ApiError:
    """422 Invalid; each cause is ``"<field>: <message>"`` as the validation produced it."""
    details: dict[str, Any] = {"name": name, "kind": resource}
    if causes:
        details["causes"] = [
            {
                "reason": "FieldValueInvalid",
                "field": c.split(":", 1)[0],
                "message": c.split(":", 1)[-1].strip(),
            }
            for c in causes
        ]
    return ApiError(422, "Invalid", f'{resource} "{name}" is invalid: {message}', details=details)


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def success_status(name: str, resource: str) -> dict[str, Any]:
    """The ``Status`` a delete-collection or a finished delete may answer."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "kind": resource},
    }
