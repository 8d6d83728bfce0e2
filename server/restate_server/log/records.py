"""Log records: the only way state changes.

Every record appended to a partition's log is one of the dataclasses below, encoded as a msgpack
array `[kind, epoch, dedup, *fields]`. This module is the single definition of that wire format
(like upstream's `wal-protocol`): the ingress, the leader and the outbox shuffle build records here,
and the partition processor decodes them here. Field order is part of the on-disk format: append
new fields at the end with a default.

`epoch` is the leader epoch of a self-proposed record (invoker effects, timers, outbox truncation);
records from outside the leader (ingress, other partitions) carry 0 and are never fenced. `dedup`
is `(source_partition, sequence)` for records delivered from another partition's outbox, so a
redelivery after a crash is applied once.

Results (`Value`, `Failure`, `Void`) and attempt terminals (`Ended`, `Suspended`, `Killed`,
`Paused`) are typed in memory and stored as the short lists they always were (`["value", b"…"]`,
`["suspend", [ids], [ids], [names]]`), converted here and nowhere else, so old logs still decode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, ClassVar, TypeAlias

import msgpack


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


class RecordDecodeError(ValueError):
    """Bytes that are not a record this server knows: an unknown kind or a malformed body."""


# ---- results and terminals: typed in memory, lists on the wire (the wire form predates the types)


@dataclass(frozen=True, slots=True, kw_only=True)
class Value:
    """A successful result; wire form `["value", content]`."""

    content: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """A terminal failure with its code (HTTP-like, or 5xx from upstream's table); `["failure", code, message]`."""

    code: int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Void:
    """A completion without a value (a signal, an empty promise); `["void"]`."""


Result: TypeAlias = Value | Failure | Void


def result_to_wire(result: Result) -> list[Any]:
    match result:
        case Value():
            return ["value", result.content]
        case Failure():
            return ["failure", result.code, result.message]
        case Void():
            return ["void"]


def result_from_wire(wire: list[Any]) -> Result:
    """Inverse of `result_to_wire`; raises RecordDecodeError on anything else."""
    match wire:
        case ["value", bytes() as content]:
            return Value(content=content)
        case ["failure", int() as code, str() as message]:
            return Failure(code=code, message=message)
        case ["void"]:
            return Void()
    raise RecordDecodeError(f"not a result: {wire!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ended:
    """The attempt sent End: the invocation's result is its Output command (or empty)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Suspended:
    """The attempt suspended until one of these completions or signals has a notification."""

    completions: tuple[int, ...] = ()
    signals: tuple[int, ...] = ()
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Killed:
    """The invoker gave up on the invocation: it completes with this failure."""

    code: int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Paused:
    """The invoker gave up on this attempt and the retry policy says pause, not kill."""

    code: int
    message: str


Terminal: TypeAlias = Ended | Suspended | Killed | Paused


def suspended_to_wire(suspended: Suspended) -> list[Any]:
    return [list(suspended.completions), list(suspended.signals), list(suspended.names)]


def suspended_from_wire(wire: list[Any]) -> Suspended:
    match wire:
        case [list() as completions, list() as signals, list() as names, *_]:
            if all(isinstance(c, int) for c in (*completions, *signals)) and all(
                isinstance(n, str) for n in names
            ):
                return Suspended(completions=tuple(completions), signals=tuple(signals), names=tuple(names))
    raise RecordDecodeError(f"not a suspension: {wire!r}")


def terminal_to_wire(terminal: Terminal) -> list[Any]:
    match terminal:
        case Ended():
            return ["end"]
        case Suspended():
            return ["suspend", *suspended_to_wire(terminal)]
        case Killed():
            return ["kill", terminal.code, terminal.message]
        case Paused():
            return ["pause", terminal.code, terminal.message]


def terminal_from_wire(wire: list[Any]) -> Terminal:
    """Inverse of `terminal_to_wire`; raises RecordDecodeError on anything else."""
    match wire:
        case ["end"]:
            return Ended()
        case ["suspend", *waiting]:
            return suspended_from_wire(waiting)
        case ["kill", int() as code, str() as message]:
            return Killed(code=code, message=message)
        case ["pause", int() as code, str() as message]:
            return Paused(code=code, message=message)
    raise RecordDecodeError(f"not a terminal: {wire!r}")


# ---- records

Dedup = tuple[int, int] | None


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
    attempt re-sends what a previous one proposed). `terminal` says how the attempt ended, if it did.
    """

    kind: ClassVar[RecordKind] = RecordKind.INVOKER_EFFECT
    invocation_id: bytes
    first_command_index: int
    entries: list[tuple[int, int, bytes]]
    pin: tuple[str, int] | None = None
    terminal: Terminal | None = None
    now: int = 0


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
}
_FROM_WIRE: dict[str, Callable[[Any], Any]] = {
    "source": Source.from_wire,
    "response_to": _pair,
    "pin": _pair,
    "headers": lambda hs: [(h[0], h[1]) for h in hs],
    "entries": lambda es: [(e[0], e[1], e[2]) for e in es],
    "result": result_from_wire,
    "terminal": terminal_from_wire,
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
