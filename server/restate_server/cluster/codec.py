"""How the worker's answers cross the wire between nodes (msgpack, results in their wire form)."""

from __future__ import annotations

from typing import Any

import msgpack

from restate_server.outcomes import result_from_wire, result_to_wire
from restate_server.storage.status import InvocationStatus
from restate_server.worker.actions import InvocationCompleted, Outcome, SubmitOutcome


def encode_outcome(outcome: SubmitOutcome) -> bytes:
    data: bytes = msgpack.packb(
        [
            outcome.request_id,
            str(outcome.outcome),
            outcome.invocation_id,
            None if outcome.result is None else result_to_wire(outcome.result),
            outcome.expires_at,
            outcome.execute_at,
        ],
        use_bin_type=True,
    )
    return data


def decode_outcome(data: bytes) -> SubmitOutcome:
    request_id, outcome, invocation_id, result, expires_at, execute_at = _unpack(data)
    return SubmitOutcome(
        request_id=request_id,
        outcome=Outcome(outcome),
        invocation_id=invocation_id,
        result=None if result is None else result_from_wire(result),
        expires_at=expires_at,
        execute_at=execute_at,
    )


def encode_completion(done: InvocationCompleted) -> bytes:
    data: bytes = msgpack.packb(
        [done.invocation_id, result_to_wire(done.result), done.expires_at, done.idempotent], use_bin_type=True
    )
    return data


def decode_completion(data: bytes) -> InvocationCompleted:
    invocation_id, result, expires_at, idempotent = _unpack(data)
    return InvocationCompleted(
        invocation_id=invocation_id,
        result=result_from_wire(result),
        expires_at=expires_at,
        idempotent=idempotent,
    )


def completion_of(invocation_id: bytes, st: InvocationStatus) -> InvocationCompleted:
    """The completion a waiter would have been given, for an invocation that already completed."""
    assert st.result is not None
    return InvocationCompleted(
        invocation_id=invocation_id,
        result=st.result,
        expires_at=st.expires_at,
        idempotent=st.idempotency_key is not None,
    )


def _unpack(data: bytes) -> list[Any]:
    value: list[Any] = msgpack.unpackb(data, raw=False)
    return value
