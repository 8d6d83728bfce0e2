"""Why a record could not be applied; each error carries the failure code its invocation gets.

The state machine never lets an exception out of `apply`: these are caught at the record
boundary, the record's writes are rolled back, and the invocation it concerns completes with
`Failure(code, str(error))`. Messages are built from our own data only (never a library's error
text), so every replica and every replay writes the same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from restate_server.storage.status import Status
    from restate_server.worker.state_machine.transitions import Event

PROTOCOL_VIOLATION = 571
"""Upstream's failure code for an SDK that broke the service protocol (`RT0012`)."""


class ApplyError(Exception):
    """A record that cannot be applied to the invocation it concerns."""

    code: ClassVar[int] = PROTOCOL_VIOLATION


class ProtocolViolation(ApplyError):
    """A command, run completion or suspension that does not decode or makes no sense here."""


class InvalidTransition(ApplyError):
    """The record asks for a move the transition table does not have."""

    def __init__(self, current: Status, event: Event) -> None:
        super().__init__(f"Protocol violation: cannot {event.value} an invocation that is {current.value}")
        self.current = current
        self.event = event
