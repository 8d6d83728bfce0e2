"""What every state-machine step works with: the transaction, the partition, the collected actions.

Also the shared moves that many records make (append a notification, resume a suspended
invocation, send a record to another partition), so each command module stays small.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from restate_server.ids import partition_of
from restate_server.log.records import Record, encode
from restate_server.protocol.messages import MessageType as T
from restate_server.storage import journal, outbox, status
from restate_server.storage.status import InvocationStatus
from restate_server.storage.transaction import Transaction
from restate_server.worker import actions as act

# (service name) -> (service type, {handler name: handler type}) or None; from the schema registry
ServiceLookup = Callable[[str], tuple[str, dict[str, str | None]] | None]


@dataclass(slots=True)
class Context:
    txn: Transaction
    partition: int
    num_partitions: int
    lookup_service: ServiceLookup
    now: int = 0
    actions: list[act.Action] = field(default_factory=list)
    # statuses read or written in this batch, written back once at the end of the record
    _dirty: dict[bytes, InvocationStatus] = field(default_factory=dict)

    def status(self, invocation_id: bytes) -> InvocationStatus | None:
        cached = self._dirty.get(invocation_id)
        if cached is not None:
            return cached
        return status.get(self.txn, self.partition, invocation_id)

    def save(self, invocation_id: bytes, st: InvocationStatus) -> None:
        st.modified_at = max(st.modified_at, self.now)
        self._dirty[invocation_id] = st

    def forget(self, invocation_id: bytes) -> None:
        self._dirty.pop(invocation_id, None)
        status.delete(self.txn, self.partition, invocation_id)

    def flush(self) -> None:
        for invocation_id, st in self._dirty.items():
            status.put(self.txn, self.partition, invocation_id, st)
        self._dirty.clear()

    def emit(self, action: act.Action) -> None:
        self.actions.append(action)

    def send(self, partition_key: int, record: Record) -> None:
        """Queue a record for the partition owning `partition_key`, via the outbox."""
        target = partition_of(partition_key, self.num_partitions)
        data = encode(record)
        seq = outbox.add(self.txn, self.partition, target, data)
        self.emit(act.NewOutboxMessage(self.partition, seq, target, data))

    def append_entry(
        self, invocation_id: bytes, st: InvocationStatus, type_: int, flags: int, payload: bytes
    ) -> int:
        index = st.journal_length
        journal.append(self.txn, self.partition, invocation_id, index, type_, flags, payload)
        st.journal_length += 1
        return index

    def notify(
        self,
        invocation_id: bytes,
        st: InvocationStatus,
        type_: int,
        payload: bytes,
        *,
        completion_id: int | None = None,
        signal: int | str | None = None,
        ack: bool = False,
    ) -> None:
        """Append a notification to the journal, push it to a running attempt, wake a suspension."""
        if completion_id is not None:
            if completion_id in st.completed_ids:
                return
            st.completed_ids.append(completion_id)
        if isinstance(signal, int):
            st.signal_ids.append(signal)
        elif isinstance(signal, str):
            st.signal_names.append(signal)
        index = self.append_entry(invocation_id, st, type_, 0, payload)
        if st.status == status.INVOKED:
            self.emit(
                act.ForwardNotification(invocation_id, index, type_, payload, completion_id if ack else None)
            )
        elif st.status == status.SUSPENDED and self.suspension_satisfied(st):
            self.resume(invocation_id, st)
        self.save(invocation_id, st)

    @staticmethod
    def suspension_satisfied(st: InvocationStatus) -> bool:
        """True if any awaited completion or signal has a notification.

        V7 combinator trees are approximated by "any": resuming early only costs the SDK a
        replay and a new suspension, resuming late would hang.
        """
        if st.waiting is None:
            return True
        completions, signals, names = st.waiting[0], st.waiting[1], st.waiting[2]
        return (
            any(c in st.completed_ids for c in completions)
            or any(s in st.signal_ids for s in signals)
            or any(n in st.signal_names for n in names)
        )

    def resume(self, invocation_id: bytes, st: InvocationStatus) -> None:
        st.status = status.INVOKED
        st.waiting = None
        self.save(invocation_id, st)
        self.emit(act.StartAttempt(self.partition, invocation_id))


def result_from_output(payload: bytes) -> list[Any]:
    """The stored result (["value", bytes] | ["failure", code, message]) of an Output command."""
    from restate_server.protocol import protocol_pb2 as pb

    msg = pb.OutputCommandMessage.FromString(payload)
    if msg.HasField("failure"):
        return ["failure", msg.failure.code, msg.failure.message]
    return ["value", msg.value.content]


NOTIFICATION_RESULT_FIELDS = {
    T.CALL_COMPLETION,
    T.ATTACH_INVOCATION_COMPLETION,
    T.GET_INVOCATION_OUTPUT_COMPLETION,
    T.GET_PROMISE_COMPLETION,
    T.PEEK_PROMISE_COMPLETION,
}
