"""Readers over the actions a batch produced, and over journal notifications, for assertions."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message
from restate_server.log import records as rec
from restate_server.protocol.messages import MESSAGE_CLASSES
from restate_server.worker import actions as act

A = TypeVar("A")


def of_type(actions: list[act.Action], kind: type[A]) -> list[A]:
    return [a for a in actions if isinstance(a, kind)]


def started(actions: list[act.Action]) -> list[bytes]:
    """Invocations that got an attempt, in order."""
    return [a.invocation_id for a in of_type(actions, act.StartAttempt)]


def aborted(actions: list[act.Action]) -> list[bytes]:
    return [a.invocation_id for a in of_type(actions, act.AbortAttempt)]


def completed(actions: list[act.Action]) -> dict[bytes, rec.Result]:
    """Result of each invocation that completed."""
    return {a.invocation_id: a.result for a in of_type(actions, act.InvocationCompleted)}


def outcomes(actions: list[act.Action]) -> list[act.Outcome]:
    return [a.outcome for a in of_type(actions, act.SubmitOutcome)]


def sent(actions: list[act.Action]) -> list[rec.Record]:
    """Records this partition sent through its outbox, decoded, in order."""
    return [rec.decode(a.record) for a in of_type(actions, act.NewOutboxMessage)]


def forwarded(actions: list[act.Action]) -> list[tuple[int, int]]:
    """(notification type, journal index) of each notification pushed to a running attempt."""
    return [(a.type, a.journal_index) for a in of_type(actions, act.ForwardNotification)]


def decode(entry_type: int, payload: bytes) -> Message:
    """A journal entry or forwarded notification as its protobuf message."""
    return MESSAGE_CLASSES[entry_type].FromString(payload)
