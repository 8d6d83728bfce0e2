"""Typed results and attempt endings, shared by log records, the partition store and the ingress.

In memory they are frozen dataclasses; on the wire (log records, status rows, promises) they keep the
list form that predates the types, so data written before stays readable. They live below both the
log and the store, which may not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias


class WireFormatError(ValueError):
    """A stored or logged value that is not in the expected wire shape."""


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
    """Inverse of `result_to_wire`; raises WireFormatError on anything else."""
    match wire:
        case ["value", bytes() as content]:
            return Value(content=content)
        case ["failure", int() as code, str() as message]:
            return Failure(code=code, message=message)
        case ["void"]:
            return Void()
    raise WireFormatError(f"not a result: {wire!r}")


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
    raise WireFormatError(f"not a suspension: {wire!r}")


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
    """Inverse of `terminal_to_wire`; raises WireFormatError on anything else."""
    match wire:
        case ["end"]:
            return Ended()
        case ["suspend", *waiting]:
            return suspended_from_wire(waiting)
        case ["kill", int() as code, str() as message]:
            return Killed(code=code, message=message)
        case ["pause", int() as code, str() as message]:
            return Paused(code=code, message=message)
    raise WireFormatError(f"not a terminal: {wire!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEvent:
    """Something that happened to an invocation between journal entries (upstream's journal events).

    `ty` is `TransientError` or `Paused`; `json` is the event as upstream's `event_json` column shows
    it. Wire form `[ty, json]`.
    """

    ty: str
    json: str


def journal_event_to_wire(event: JournalEvent) -> list[Any]:
    return [event.ty, event.json]


def journal_event_from_wire(wire: list[Any]) -> JournalEvent:
    """Inverse of `journal_event_to_wire`; raises WireFormatError on anything else."""
    match wire:
        case [str() as ty, str() as json]:
            return JournalEvent(ty=ty, json=json)
    raise WireFormatError(f"not a journal event: {wire!r}")
