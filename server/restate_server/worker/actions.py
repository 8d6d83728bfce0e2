"""Effects the state machine asks the leader to carry out, after the transaction committed.

The state machine never does I/O: it appends these frozen records to a list. Followers (and
replays on startup) drop them; the leader hands them to the invoker, the timer service, the outbox
shuffle and the ingress waiters (upstream's `state_machine/actions.rs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StartAttempt:
    """Run (or re-run) the invocation: open an attempt that replays its journal."""

    partition: int
    invocation_id: bytes


@dataclass(frozen=True, slots=True)
class ForwardNotification:
    """Push a new journal notification to the running attempt, if its stream is open.

    `journal_index` lets an attempt that already replayed this entry skip it. `ack_completion_id`
    set means: the SDK asked for an ack (V7 run proposal), send ProposeRunCompletionAck instead.
    """

    invocation_id: bytes
    journal_index: int
    type: int
    payload: bytes
    ack_completion_id: int | None = None


@dataclass(frozen=True, slots=True)
class AbortAttempt:
    """Stop the running attempt without retrying (the invocation was killed or completed)."""

    invocation_id: bytes


@dataclass(frozen=True, slots=True)
class RegisterTimer:
    partition: int
    key: bytes
    fire_at: int


@dataclass(frozen=True, slots=True)
class NewOutboxMessage:
    partition: int
    seq: int
    target_partition: int
    record: bytes


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    """Answer to the request that appended a record with `submit_request` set.

    outcome: "accepted" | "previously_accepted" | "conflict" | "not_found" | "completed" |
    "not_completed" | "ok"; `result` is the stored result when the invocation already completed.
    """

    request_id: int
    outcome: str
    invocation_id: bytes | None = None
    result: list[Any] | None = None
    expires_at: int | None = None
    execute_at: int | None = None


@dataclass(frozen=True, slots=True)
class InvocationCompleted:
    """An invocation finished; wake whoever waits on it (ingress calls and attaches)."""

    invocation_id: bytes
    result: list[Any]
    expires_at: int | None
    idempotent: bool


Action = (
    StartAttempt
    | ForwardNotification
    | AbortAttempt
    | RegisterTimer
    | NewOutboxMessage
    | SubmitOutcome
    | InvocationCompleted
)
