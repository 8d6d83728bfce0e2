"""Log records: the only way state changes.

Every record appended to a partition's log is one of the dataclasses below, encoded as a msgpack
array `[kind, epoch, dedup, *fields]`. This module is the single definition of that wire format
(like upstream's `wal-protocol`): the ingress, the leader and the outbox shuffle build records here,
and the partition processor decodes them here. Field order is part of the on-disk format: append
new fields at the end with a default.

`epoch` is the leader epoch of a self-proposed record (invoker effects, timers, outbox truncation);
records from outside the leader (ingress, other partitions) carry 0 and are never fenced. `dedup`
is `(producer, sequence)`: the producer is the source partition (an int) for records delivered from
another partition's outbox, or a string naming an external producer (one Kafka partition of one
subscription); a producer's sequences only grow, so a redelivery after a crash is applied once.

Results (`Value`, `Failure`, `Void`) and attempt terminals (`Ended`, `Suspended`, `Killed`,
`Paused`) are typed in memory and stored as the short lists they always were (`["value", b"…"]`,
`["suspend", [ids], [ids], [names]]`), converted in `restate_server.outcomes`, so old logs still decode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, ClassVar, TypeAlias

import msgpack

# re-exported: the records' field types and their wire converters belong to this module's API
from restate_server.outcomes import (
    Ended as Ended,
    Failure as Failure,
    JournalEvent as JournalEvent,
    Killed as Killed,
    Paused as Paused,
    Result as Result,
    Suspended as Suspended,
    Terminal as Terminal,
    Value as Value,
    Void as Void,
    WireFormatError as WireFormatError,
    journal_event_from_wire,
    journal_event_to_wire,
    result_from_wire as result_from_wire,
    result_to_wire as result_to_wire,
    terminal_from_wire as terminal_from_wire,
    terminal_to_wire as terminal_to_wire,
)


class RecordKind(IntEnum):
    ANNOUNCE_LEADER = 1
    INVOKE = 2
    INVOKER_EFFECT = 3
    TIMER_FIRED = 4
    INVOCATION_RESPONSE = 5
    NOTIFY_SIGNAL = 6
    PURGE = 7
    TERMINATE = 8
    PATCH_STATE = 9
    RESUME = 10
    PAUSE = 11
    TRUNCATE_OUTBOX = 12
    PURGE_JOURNAL = 13
    RESTART_AS_NEW = 14
    TRIM_STATE_HISTORY = 15


class RecordDecodeError(WireFormatError):
    """Bytes that are not a record this server knows: an unknown kind or a malformed body."""


# ---- records

Producer = int | str
"""Who numbers a dedup sequence: a source partition, or an external producer's name."""
Dedup = tuple[Producer, int] | None


@dataclass(slots=True, kw_only=True)
class Record:
    """Base of all records; `epoch` and `dedup` are the envelope, the rest is the body.

    The body is encoded as the dataclass fields in declaration order; fields needing more than
    msgpack's types are converted through `_TO_WIRE` / `_FROM_WIRE`.
    """

    kind: ClassVar[RecordKind]
    epoch: int = 0
    dedup: Dedup = None


@dataclass(slots=True, kw_only=True)
class AnnounceLeader(Record):
    """Written by a node when it becomes leader; fences effects proposed under older epochs."""

    kind: ClassVar[RecordKind] = RecordKind.ANNOUNCE_LEADER
    leader_epoch: int


@dataclass(slots=True, kw_only=True)
class Source:
    """Who created an invocation (`invoked_by` in SQL)."""

    kind: str = "ingress"  # ingress | service | subscription | restart_as_new
    caller_id: bytes | None = None
    caller_target: str | None = None
    subscription_id: str | None = None

    def to_wire(self) -> list[Any]:
        return [self.kind, self.caller_id, self.caller_target, self.subscription_id]

    @classmethod
    def from_wire(cls, w: list[Any]) -> Source:
        return cls(kind=w[0], caller_id=w[1], caller_target=w[2], subscription_id=w[3])


@dataclass(slots=True, kw_only=True)
class Invoke(Record):
    """Start a new invocation (or attach to an existing one with the same deterministic id)."""

    kind: ClassVar[RecordKind] = RecordKind.INVOKE
    invocation_id: bytes
    service: str
    handler: str
    key: str | None
    service_ty: str
    handler_ty: str | None
    headers: list[tuple[str, str]]
    body: bytes
    created_at: int
    source: Source = field(default_factory=Source)
    # (caller invocation id, completion id) to complete when this invocation ends
    response_to: tuple[bytes, int] | None = None
    idempotency_key: str | None = None
    execute_at: int | None = None
    completion_retention: int = 0
    journal_retention: int = 0
    # ingress request id waiting for the submit outcome (accepted / previously accepted / conflict)
    submit_request: int | None = None
    # True when the submitter waits for the result (a call, not a send)
    is_call: bool = False


@dataclass(slots=True, kw_only=True)
class InvokerEffect(Record):
    """What one read from an attempt's stream produced: journal entries and maybe a terminal.

    `first_command_index` lets the processor drop commands it has already journaled (a retried
    attempt re-sends what a previous one proposed). `terminal` says how the attempt ended, if it did;
    `event` is what `sys_journal_events` records of it (a transient error, a pause).
    """

    kind: ClassVar[RecordKind] = RecordKind.INVOKER_EFFECT
    invocation_id: bytes
    first_command_index: int
    entries: list[tuple[int, int, bytes]]
    pin: tuple[str, int] | None = None
    terminal: Terminal | None = None
    now: int = 0
    event: JournalEvent | None = None


@dataclass(slots=True, kw_only=True)
class TimerFired(Record):
    """A durable timer reached its time: `timer_key` identifies it in the timers table."""

    kind: ClassVar[RecordKind] = RecordKind.TIMER_FIRED
    timer_key: bytes
    now: int = 0


@dataclass(slots=True, kw_only=True)
class InvocationResponse(Record):
    """The result of a call, delivered to the caller's partition."""

    kind: ClassVar[RecordKind] = RecordKind.INVOCATION_RESPONSE
    invocation_id: bytes
    completion_id: int
    result: Result
    notification_type: int = 0x800D  # CallCompletionNotification unless attach/get-output


@dataclass(slots=True, kw_only=True)
class NotifySignal(Record):
    """Deliver a signal (awakeable completion, cancel) to an invocation."""

    kind: ClassVar[RecordKind] = RecordKind.NOTIFY_SIGNAL
    invocation_id: bytes
    signal_index: int | None
    signal_name: str | None
    result: Result
    submit_request: int | None = None


@dataclass(slots=True, kw_only=True)
class Purge(Record):
    """Remove completed invocations whose retention expired (or on admin request)."""

    kind: ClassVar[RecordKind] = RecordKind.PURGE
    invocation_ids: list[bytes]
    now: int = 0
    submit_request: int | None = None


@dataclass(slots=True, kw_only=True)
class Terminate(Record):
    """Cancel (graceful) or kill (immediate) an invocation, from the admin API or a parent."""

    kind: ClassVar[RecordKind] = RecordKind.TERMINATE
    invocation_id: bytes
    mode: str  # "cancel" | "kill"
    now: int = 0
    submit_request: int | None = None


@dataclass(slots=True, kw_only=True)
class PatchState(Record):
    """Replace the whole state of one object key (admin `POST /services/{svc}/state`)."""

    kind: ClassVar[RecordKind] = RecordKind.PATCH_STATE
    service: str
    key: str
    new_state: dict[bytes, bytes]
    expected_version: str | None = None
    now: int = 0  # when the admin API accepted the edit: the commit ts of its state history event


@dataclass(slots=True, kw_only=True)
class Resume(Record):
    """Resume a paused or suspended invocation (admin)."""

    kind: ClassVar[RecordKind] = RecordKind.RESUME
    invocation_id: bytes
    now: int = 0
    submit_request: int | None = None


@dataclass(slots=True, kw_only=True)
class Pause(Record):
    """Pause a running invocation (admin): its attempt stops, nothing runs until a resume."""

    kind: ClassVar[RecordKind] = RecordKind.PAUSE
    invocation_id: bytes
    now: int = 0
    submit_request: int | None = None


@dataclass(slots=True, kw_only=True)
class TruncateOutbox(Record):
    """The leader delivered the outbox up to and including `up_to_seq`: those rows can go.

    Going through the log (not a direct delete by the leader) keeps every replica's outbox equal.
    """

    kind: ClassVar[RecordKind] = RecordKind.TRUNCATE_OUTBOX
    up_to_seq: int


@dataclass(slots=True, kw_only=True)
class PurgeJournal(Record):
    """Drop the journal of a completed invocation, keeping its status and result (admin)."""

    kind: ClassVar[RecordKind] = RecordKind.PURGE_JOURNAL
    invocation_id: bytes
    now: int = 0
    submit_request: int | None = None


@dataclass(slots=True, kw_only=True)
class RestartAsNew(Record):
    """Start `new_invocation_id` with the input (and journal prefix) of a completed invocation (admin).

    The new id is chosen by the requester, so every replica and replay creates the same invocation.
    `copy_up_to` is the last journal index copied (0: only the input). `deployment_id` replaces the
    pinned deployment (None: keep the old pin).
    """

    kind: ClassVar[RecordKind] = RecordKind.RESTART_AS_NEW
    invocation_id: bytes
    new_invocation_id: bytes
    copy_up_to: int = 0
    deployment_id: str | None = None
    now: int = 0
    submit_request: int | None = None


@dataclass(slots=True, kw_only=True)
class TrimStateHistory(Record):
    """The leader's view of each keyed service's state history retention (ms, 0 = off) at `now`.

    The partition keeps `retention` (a service without an entry records history) and deletes, a
    bounded number at a time, the events older than `now - retention`; the leader sends another
    record while old events remain. Carrying the retentions in the log keeps every replica's
    history, and every replay's, equal whatever the schema said when they applied it.
    """

    kind: ClassVar[RecordKind] = RecordKind.TRIM_STATE_HISTORY
    now: int
    retention: dict[str, int]


AnyRecord: TypeAlias = (
    AnnounceLeader
    | Invoke
    | InvokerEffect
    | TimerFired
    | InvocationResponse
    | NotifySignal
    | Purge
    | Terminate
    | PatchState
    | Resume
    | Pause
    | TruncateOutbox
    | PurgeJournal
    | RestartAsNew
    | TrimStateHistory
)

_CLASSES: dict[RecordKind, type[Record]] = {
    cls.kind: cls
    for cls in (
        AnnounceLeader,
        Invoke,
        InvokerEffect,
        TimerFired,
        InvocationResponse,
        NotifySignal,
        Purge,
        Terminate,
        PatchState,
        Resume,
        Pause,
        TruncateOutbox,
        PurgeJournal,
        RestartAsNew,
        TrimStateHistory,
    )
}
_ENVELOPE = {"epoch", "dedup"}
_BODY: dict[RecordKind, tuple[str, ...]] = {
    kind: tuple(f.name for f in fields(cls) if f.name not in _ENVELOPE) for kind, cls in _CLASSES.items()
}


def _pair(w: Any) -> Any:
    return None if w is None else (w[0], w[1])


# msgpack turns tuples into lists and cannot carry dataclasses: these fields are converted
# (None is passed through unconverted both ways).
_TO_WIRE: dict[str, Callable[[Any], Any]] = {
    "source": lambda s: s.to_wire(),
    "result": result_to_wire,
    "terminal": terminal_to_wire,
    "event": journal_event_to_wire,
}
_FROM_WIRE: dict[str, Callable[[Any], Any]] = {
    "source": Source.from_wire,
    "response_to": _pair,
    "pin": _pair,
    "headers": lambda hs: [(h[0], h[1]) for h in hs],
    "entries": lambda es: [(e[0], e[1], e[2]) for e in es],
    "result": result_from_wire,
    "terminal": terminal_from_wire,
    "event": journal_event_from_wire,
}


def encode(record: Record) -> bytes:
    """Record to its on-disk bytes."""
    body = []
    for name in _BODY[record.kind]:
        value = getattr(record, name)
        convert = _TO_WIRE.get(name)
        body.append(value if convert is None or value is None else convert(value))
    data: bytes = msgpack.packb([record.kind, record.epoch, record.dedup, *body], use_bin_type=True)
    return data


def decode(data: bytes) -> Record:
    """On-disk bytes to a record; raises RecordDecodeError on an unknown kind or a malformed body."""
    try:
        wire = msgpack.unpackb(data, raw=False, strict_map_key=False)
        kind = RecordKind(wire[0])
        values: dict[str, Any] = {}
        for name, value in zip(_BODY[kind], wire[3:], strict=False):
            convert = _FROM_WIRE.get(name)
            values[name] = value if convert is None or value is None else convert(value)
        return _CLASSES[kind](epoch=wire[1], dedup=_pair(wire[2]), **values)
    except RecordDecodeError:
        raise
    except (ValueError, TypeError, IndexError, KeyError) as exc:  # msgpack errors are ValueErrors
        raise RecordDecodeError(f"not a log record: {exc}") from exc
