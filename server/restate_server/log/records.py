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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar

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


Dedup = tuple[int, int] | None


@dataclass(slots=True, kw_only=True)
class Record:
    """Base of all records; `epoch` and `dedup` are the envelope."""

    kind: ClassVar[RecordKind]
    epoch: int = 0
    dedup: Dedup = None

    def fields(self) -> list[Any]:
        raise NotImplementedError


@dataclass(slots=True, kw_only=True)
class AnnounceLeader(Record):
    """Written by a node when it becomes leader; fences effects proposed under older epochs."""

    kind: ClassVar[RecordKind] = RecordKind.ANNOUNCE_LEADER
    leader_epoch: int

    def fields(self) -> list[Any]:
        return [self.leader_epoch]


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

    def fields(self) -> list[Any]:
        return [
            self.invocation_id,
            self.service,
            self.handler,
            self.key,
            self.service_ty,
            self.handler_ty,
            self.headers,
            self.body,
            self.created_at,
            self.source.to_wire(),
            self.response_to,
            self.idempotency_key,
            self.execute_at,
            self.completion_retention,
            self.journal_retention,
            self.submit_request,
            self.is_call,
        ]


@dataclass(slots=True, kw_only=True)
class JournalEntry:
    """One service-protocol message as stored: type, flags and raw protobuf payload."""

    type: int
    flags: int
    payload: bytes


@dataclass(slots=True, kw_only=True)
class InvokerEffect(Record):
    """What one read from an attempt's stream produced: journal entries and maybe a terminal.

    `first_command_index` lets the processor drop commands it has already journaled (a retried
    attempt re-sends what a previous one proposed). `terminal` is one of
    `["end"]`, `["suspend", [completion ids], [signal ids], [signal names], future_bytes|None]`,
    `["kill", code, message]`, `["pause", code, message]`.
    """

    kind: ClassVar[RecordKind] = RecordKind.INVOKER_EFFECT
    invocation_id: bytes
    first_command_index: int
    entries: list[tuple[int, int, bytes]]
    pin: tuple[str, int] | None = None
    terminal: list[Any] | None = None
    now: int = 0

    def fields(self) -> list[Any]:
        return [
            self.invocation_id,
            self.first_command_index,
            self.entries,
            self.pin,
            self.terminal,
            self.now,
        ]


@dataclass(slots=True, kw_only=True)
class TimerFired(Record):
    """A durable timer reached its time: `timer_key` identifies it in the timers table."""

    kind: ClassVar[RecordKind] = RecordKind.TIMER_FIRED
    timer_key: bytes
    now: int = 0

    def fields(self) -> list[Any]:
        return [self.timer_key, self.now]


# A completion result on the wire: ["value", bytes] | ["failure", code, message] | ["void"]
Result = list[Any]


@dataclass(slots=True, kw_only=True)
class InvocationResponse(Record):
    """The result of a call, delivered to the caller's partition."""

    kind: ClassVar[RecordKind] = RecordKind.INVOCATION_RESPONSE
    invocation_id: bytes
    completion_id: int
    result: Result
    notification_type: int = 0x800D  # CallCompletionNotification unless attach/get-output

    def fields(self) -> list[Any]:
        return [self.invocation_id, self.completion_id, self.result, self.notification_type]


@dataclass(slots=True, kw_only=True)
class NotifySignal(Record):
    """Deliver a signal (awakeable completion, cancel) to an invocation."""

    kind: ClassVar[RecordKind] = RecordKind.NOTIFY_SIGNAL
    invocation_id: bytes
    signal_index: int | None
    signal_name: str | None
    result: Result
    submit_request: int | None = None

    def fields(self) -> list[Any]:
        return [self.invocation_id, self.signal_index, self.signal_name, self.result, self.submit_request]


@dataclass(slots=True, kw_only=True)
class Purge(Record):
    """Remove completed invocations whose retention expired (or on admin request)."""

    kind: ClassVar[RecordKind] = RecordKind.PURGE
    invocation_ids: list[bytes]
    now: int = 0
    submit_request: int | None = None

    def fields(self) -> list[Any]:
        return [self.invocation_ids, self.now, self.submit_request]


@dataclass(slots=True, kw_only=True)
class Terminate(Record):
    """Cancel (graceful) or kill (immediate) an invocation, from the admin API or a parent."""

    kind: ClassVar[RecordKind] = RecordKind.TERMINATE
    invocation_id: bytes
    mode: str  # "cancel" | "kill"
    now: int = 0
    submit_request: int | None = None

    def fields(self) -> list[Any]:
        return [self.invocation_id, self.mode, self.now, self.submit_request]


@dataclass(slots=True, kw_only=True)
class PatchState(Record):
    """Replace the whole state of one object key (admin `POST /services/{svc}/state`)."""

    kind: ClassVar[RecordKind] = RecordKind.PATCH_STATE
    service: str
    key: str
    new_state: dict[bytes, bytes]
    expected_version: str | None = None

    def fields(self) -> list[Any]:
        return [self.service, self.key, self.new_state, self.expected_version]


@dataclass(slots=True, kw_only=True)
class Resume(Record):
    """Resume a paused or suspended invocation (admin)."""

    kind: ClassVar[RecordKind] = RecordKind.RESUME
    invocation_id: bytes
    now: int = 0
    submit_request: int | None = None

    def fields(self) -> list[Any]:
        return [self.invocation_id, self.now, self.submit_request]


@dataclass(slots=True, kw_only=True)
class Pause(Record):
    """Pause a running invocation (admin): its attempt stops, nothing runs until a resume."""

    kind: ClassVar[RecordKind] = RecordKind.PAUSE
    invocation_id: bytes
    now: int = 0
    submit_request: int | None = None

    def fields(self) -> list[Any]:
        return [self.invocation_id, self.now, self.submit_request]


def encode(record: Record) -> bytes:
    """Record to its on-disk bytes."""
    data: bytes = msgpack.packb(
        [record.kind, record.epoch, record.dedup, *record.fields()], use_bin_type=True
    )
    return data


def _dedup(w: Any) -> Dedup:
    return None if w is None else (w[0], w[1])


def _pair(w: Any) -> Any:
    return None if w is None else (w[0], w[1])


def decode(data: bytes) -> Record:
    """On-disk bytes to a record; raises ValueError on an unknown kind."""
    w = msgpack.unpackb(data, raw=False, strict_map_key=False)
    kind, epoch, dedup, f = RecordKind(w[0]), w[1], _dedup(w[2]), w[3:]
    match kind:
        case RecordKind.ANNOUNCE_LEADER:
            return AnnounceLeader(epoch=epoch, dedup=dedup, leader_epoch=f[0])
        case RecordKind.INVOKE:
            return Invoke(
                epoch=epoch,
                dedup=dedup,
                invocation_id=f[0],
                service=f[1],
                handler=f[2],
                key=f[3],
                service_ty=f[4],
                handler_ty=f[5],
                headers=[(h[0], h[1]) for h in f[6]],
                body=f[7],
                created_at=f[8],
                source=Source.from_wire(f[9]),
                response_to=_pair(f[10]),
                idempotency_key=f[11],
                execute_at=f[12],
                completion_retention=f[13],
                journal_retention=f[14],
                submit_request=f[15],
                is_call=f[16],
            )
        case RecordKind.INVOKER_EFFECT:
            return InvokerEffect(
                epoch=epoch,
                dedup=dedup,
                invocation_id=f[0],
                first_command_index=f[1],
                entries=[(e[0], e[1], e[2]) for e in f[2]],
                pin=_pair(f[3]),
                terminal=f[4],
                now=f[5],
            )
        case RecordKind.TIMER_FIRED:
            return TimerFired(epoch=epoch, dedup=dedup, timer_key=f[0], now=f[1])
        case RecordKind.INVOCATION_RESPONSE:
            return InvocationResponse(
                epoch=epoch,
                dedup=dedup,
                invocation_id=f[0],
                completion_id=f[1],
                result=f[2],
                notification_type=f[3],
            )
        case RecordKind.NOTIFY_SIGNAL:
            return NotifySignal(
                epoch=epoch,
                dedup=dedup,
                invocation_id=f[0],
                signal_index=f[1],
                signal_name=f[2],
                result=f[3],
                submit_request=f[4],
            )
        case RecordKind.PURGE:
            return Purge(epoch=epoch, dedup=dedup, invocation_ids=f[0], now=f[1], submit_request=f[2])
        case RecordKind.TERMINATE:
            return Terminate(
                epoch=epoch, dedup=dedup, invocation_id=f[0], mode=f[1], now=f[2], submit_request=f[3]
            )
        case RecordKind.PATCH_STATE:
            return PatchState(
                epoch=epoch, dedup=dedup, service=f[0], key=f[1], new_state=f[2], expected_version=f[3]
            )
        case RecordKind.RESUME:
            return Resume(epoch=epoch, dedup=dedup, invocation_id=f[0], now=f[1], submit_request=f[2])
        case RecordKind.PAUSE:
            return Pause(epoch=epoch, dedup=dedup, invocation_id=f[0], now=f[1], submit_request=f[2])
    raise ValueError(f"unknown record kind {kind}")
