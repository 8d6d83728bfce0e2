"""Errors of schema changes, with upstream's META codes, messages and admin HTTP statuses.

The registry raises these; the admin API renders them once (``[CODE] message`` plus the code). Keeping
the status on the exception means no caller has to branch on the kind of failure.
"""

from __future__ import annotations


class SchemaError(Exception):
    """A refused schema change or lookup."""

    code: str | None = None
    status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def decorated(self) -> str:
        """The message as upstream prints coded errors: ``[META0006] …``."""
        return f"[{self.code}] {self.message}" if self.code else self.message


class NotFound(SchemaError):
    """The deployment or service does not exist."""

    status = 404

    def __init__(self, what: str) -> None:
        super().__init__(f"not found in the schema registry: {what}")


class ReservedName(SchemaError):
    """Service names starting with ``restate`` (or ``openapi``) are reserved."""

    code = "META0005"

    def __init__(self, name: str) -> None:
        super().__init__(f"cannot insert/modify service '{name}' as it contains a reserved name")


class DifferentType(SchemaError):
    """A new revision changes the service type; only allowed when breaking changes are."""

    code = "META0006"
    status = 409

    def __init__(self, name: str) -> None:
        super().__init__(
            f"detected a new service revision for '{name}' changing the service type from previous "
            "revision. Service type cannot be changed across revisions."
        )


class InvalidService(SchemaError):
    """A manifest combination upstream refuses (handler type, retention placement, visibility…)."""


class DifferentProtocolVersions(SchemaError):
    """An in-place deployment update must keep the protocol range."""

    code = "META0016"

    def __init__(self, old: tuple[int, int], new: tuple[int, int]) -> None:
        super().__init__(
            "an update deployment operation must provide an endpoint with the same services and handlers. "
            f"The update tried to change the supported protocol versions from {old[0]}..={old[1]} "
            f"to {new[0]}..={new[1]}"
        )
