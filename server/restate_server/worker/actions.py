"""Effects the state machine asks the leader to carry out, after the transaction committed.

The state machine never does I/O: it appends these frozen records to a list. Followers (and
replays on startup) drop them; the leader hands them to the invoker, the timer service, the outbox
shuffle and the ingress waiters (upstream's `state_machine/actions.rs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from restate_server.log.records import Result


class Outcome(StrEnum):
    """The state machine's verdict on a record that a request is waiting for."""

    ACCEPTED = "accepted"  # a new invocation was created
    PREVIOUSLY_ACCEPTED = "previously_accepted"  # the same deterministic id existed already
    CONFLICT = "conflict"  # a workflow run was called again
    OK = "ok"  # cancel, kill, purge, pause, resume or signal done
    NOT_FOUND = "not_found"  # no such invocation
    COMPLETED = "completed"  # the invocation had already completed (or the signal was delivered)
    NOT_COMPLETED = "not_completed"  # purge of a running one, resume of an inboxed/scheduled one
    ALREADY_PAUSED = "already_paused"
    NOT_RUNNING = "not_running"  # pause of an invocation that is not running or suspended
    # restart-as-new refusals (upstream's `RestartAsNewInvocationResponse`)
    NOT_STARTED = "not_started"  # inboxed or scheduled
    STILL_RUNNING = "still_running"
    MISSING_INPUT = "missing_input"  # the journal is gone (purged, or not retained)
    UNSUPPORTED = "unsupported"  # a workflow, or a prefix copy below protocol V6
    INDEX_OUT_OF_RANGE = "index_out_of_range"
    COPY_RANGE_INVALID = "copy_range_invalid"  # a copied command has no completion in the journal


@dataclass(frozen=True, slots=True, kw_only=True)
class StartAttempt:
    """Run (or re-run) the invocation: open an attempt that replays its journal."""

    partition: int
    invocation_id: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class AbortAttempt:
    """Stop the running attempt without retrying (the invocation was killed, paused or failed)."""

    invocation_id: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterTimer:
    """Fire `TimerFired(key)` into `partition` at `fire_at` (ms since the epoch)."""

    partition: int
    key: bytes
    fire_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NewOutboxMessage:
    """Deliver the encoded record to `target_partition`, tagged (partition, seq) for dedup."""

    partition: int
    seq: int
    target_partition: int
    record: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOutcome:
    """Answer to the request that appended a record with `submit_request` set.

    `result` is the stored result when the invocation already completed.
    """

    request_id: int
    outcome: Outcome
    invocation_id: bytes | None = None
    result: Result | None = None
    expires_at: int | None = None
    execute_at: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InvocationCompleted:
    """An invocation finished; wake whoever waits on it (ingress calls and attaches)."""

    invocation_id: bytes
    result: Result
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
