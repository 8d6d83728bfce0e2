"""The invocation lifecycle as data: one table of `(status, event) -> status`.

Every change of `InvocationStatus.status` goes through `move`; a pair missing from the table is
a bug or a misbehaving SDK, and raises `InvalidTransition` (which fails that invocation, see
`apply`). `FREE` stands for "no row": creation starts there and a purge returns there.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from restate_server.storage.status import InvocationStatus, Status
from restate_server.worker.state_machine.errors import InvalidTransition


class Event(StrEnum):
    """What happens to an invocation, as far as its status is concerned."""

    SCHEDULE = "schedule"  # created with an execution time in the future
    ENQUEUE = "enqueue"  # must wait in its key's inbox behind the lock holder
    START = "start"  # gets an attempt now
    SUSPEND = "suspend"  # the attempt suspended, awaiting completions or signals
    RESUME = "resume"  # something it awaited arrived, or an admin resumed it
    PAUSE = "pause"  # admin pause, or retries exhausted under the pause policy
    COMPLETE = "complete"  # output, failure, kill or cancel: the result is final
    PURGE = "purge"  # retention ended or an admin purged it: the row goes


TRANSITIONS: Mapping[tuple[Status, Event], Status] = MappingProxyType(
    {
        (Status.FREE, Event.SCHEDULE): Status.SCHEDULED,
        (Status.FREE, Event.ENQUEUE): Status.INBOXED,
        (Status.FREE, Event.START): Status.INVOKED,
        (Status.SCHEDULED, Event.ENQUEUE): Status.INBOXED,
        (Status.SCHEDULED, Event.START): Status.INVOKED,
        (Status.SCHEDULED, Event.COMPLETE): Status.COMPLETED,
        (Status.INBOXED, Event.START): Status.INVOKED,
        (Status.INBOXED, Event.COMPLETE): Status.COMPLETED,
        (Status.INVOKED, Event.SUSPEND): Status.SUSPENDED,
        (Status.INVOKED, Event.PAUSE): Status.PAUSED,
        (Status.INVOKED, Event.COMPLETE): Status.COMPLETED,
        # a late effect of the attempt that suspended may suspend it again, on a new set
        (Status.SUSPENDED, Event.SUSPEND): Status.SUSPENDED,
        (Status.SUSPENDED, Event.RESUME): Status.INVOKED,
        (Status.SUSPENDED, Event.PAUSE): Status.PAUSED,
        (Status.SUSPENDED, Event.COMPLETE): Status.COMPLETED,
        (Status.PAUSED, Event.RESUME): Status.INVOKED,
        (Status.PAUSED, Event.COMPLETE): Status.COMPLETED,
        (Status.COMPLETED, Event.PURGE): Status.FREE,
    }
)


def allowed(current: Status, event: Event) -> bool:
    return (current, event) in TRANSITIONS


def next_status(current: Status, event: Event) -> Status:
    try:
        return TRANSITIONS[current, event]
    except KeyError:
        raise InvalidTransition(current, event) from None


def move(st: InvocationStatus, event: Event) -> None:
    """Apply `event` to the invocation's status, or raise InvalidTransition."""
    st.status = next_status(st.status, event)
