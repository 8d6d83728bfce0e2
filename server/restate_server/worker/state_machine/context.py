"""What every state-machine step works with: the transaction, the partition, the collected actions.

Also the shared moves that many records make (append a notification, resume a suspended
invocation, send a record to another partition), so each command module stays small.

Records are applied one at a time between `begin_record` and `end_record` (or `abandon_record`):
the transaction's savepoint holds the record's writes, and decoded statuses are cached for the
whole batch but written back at the end of each record, so abandoning a record only has to drop
its savepoint, its actions and the cache entries it touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from restate_server.ids import partition_of
from restate_server.log.records import Failure, Record, Result, Value, Void, encode
from restate_server.protocol.notifications import completion_notification, signal_notification
from restate_server.storage import journal, outbox, state, status
from restate_server.storage.state_history import Origin
from restate_server.storage.status import InvocationStatus, Status
from restate_server.storage.transaction import Transaction
from restate_server.worker import actions as act
from restate_server.worker.state_machine import transitions
from restate_server.worker.state_machine.errors import ApplyError
from restate_server.worker.state_machine.history import PendingHistory
from restate_server.worker.state_machine.transitions import Event

# (service name) -> (service type, {handler name: handler type}) or None; from the schema registry
ServiceLookup = Callable[[str], tuple[str, dict[str, str | None]] | None]


@dataclass(slots=True)
class Context:
    txn: Transaction
    partition: int
    num_partitions: int
    lookup_service: ServiceLookup
    now: int = 0
    lsn: int = 0  # log position of the record being applied (its state history events carry it)
    actions: list[act.Action] = field(default_factory=list)
    history: PendingHistory = field(default_factory=PendingHistory)
    # decoded statuses of this batch; equal to their stored rows between records
    _cache: dict[bytes, InvocationStatus] = field(default_factory=dict)
    # of the current record: statuses it read (evicted if it fails) and saved (written back)
    _touched: set[bytes] = field(default_factory=set)
    _dirty: set[bytes] = field(default_factory=set)
    _actions_mark: int = 0

    # ---- record boundaries
    def begin_record(self) -> None:
        self.txn.savepoint()
        self._actions_mark = len(self.actions)

    def end_record(self) -> None:
        """Keep the record's effects: write back the statuses it saved, its history, fold its savepoint in."""
        self.history.write(self.txn, self.partition, commit_ts=self.now, lsn=self.lsn)
        for invocation_id in self._touched - self._dirty:
            self._cache.pop(invocation_id, None)  # read only, or changed without a save: reload
        for invocation_id in self._dirty:
            cached = self._cache.get(invocation_id)
            if cached is not None:
                status.put(self.txn, self.partition, invocation_id, cached)
        self._touched.clear()
        self._dirty.clear()
        self.txn.release()

    def abandon_record(self) -> None:
        """Drop everything the record did: writes, actions and the statuses it may have changed."""
        self.txn.rollback()
        self.history.discard()
        del self.actions[self._actions_mark :]
        for invocation_id in self._touched:
            self._cache.pop(invocation_id, None)
        self._touched.clear()
        self._dirty.clear()

    def flush(self) -> None:
        """End of the batch: every record wrote its statuses back already, only the cache goes."""
        self._cache.clear()

    # ---- statuses
    def status(self, invocation_id: bytes) -> InvocationStatus | None:
        self._touched.add(invocation_id)
        cached = self._cache.get(invocation_id)
        if cached is not None:
            return cached
        st = status.get(self.txn, self.partition, invocation_id)
        if st is not None:
            self._cache[invocation_id] = st
        return st

    def save(self, invocation_id: bytes, st: InvocationStatus) -> None:
        if st.status == Status.FREE:
            raise ApplyError("internal error: saving an invocation that was already forgotten")
        st.modified_at = max(st.modified_at, self.now)
        self._touched.add(invocation_id)
        self._cache[invocation_id] = st
        self._dirty.add(invocation_id)

    def forget(self, invocation_id: bytes, st: InvocationStatus) -> None:
        """Delete the invocation's row (its status moves back to FREE)."""
        transitions.move(st, Event.PURGE)
        self._touched.add(invocation_id)
        self._cache.pop(invocation_id, None)
        self._dirty.discard(invocation_id)
        status.delete(self.txn, self.partition, invocation_id)

    # ---- object state (every change goes to the state history too)
    def set_state(self, service: str, key: str, state_key: bytes, value: bytes, origin: Origin) -> None:
        state.put(self.txn, self.partition, service, key, state_key, value)
        self.history.add(service, key, (state_key, value), origin)

    def clear_state(self, service: str, key: str, state_key: bytes, origin: Origin) -> None:
        """Clear one key; clearing a key that is not set changes nothing and records nothing."""
        if state.get(self.txn, self.partition, service, key, state_key) is None:
            return
        state.delete(self.txn, self.partition, service, key, state_key)
        self.history.add(service, key, (state_key, None), origin)

    def clear_all_state(self, service: str, key: str, origin: Origin) -> None:
        """Clear every key of the object: one change per key removed."""
        for state_key, _ in state.get_all(self.txn, self.partition, service, key):
            state.delete(self.txn, self.partition, service, key, state_key)
            self.history.add(service, key, (state_key, None), origin)

    # ---- effects
    def emit(self, action: act.Action) -> None:
        self.actions.append(action)

    def send(self, partition_key: int, record: Record) -> None:
        """Queue a record for the partition owning `partition_key`, via the outbox."""
        target = partition_of(partition_key, self.num_partitions)
        data = encode(record)
        seq = outbox.add(self.txn, self.partition, target, data)
        self.emit(
            act.NewOutboxMessage(partition=self.partition, seq=seq, target_partition=target, record=data)
        )

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
        if st.status == Status.INVOKED:
            self.emit(
                act.ForwardNotification(
                    invocation_id=invocation_id,
                    journal_index=index,
                    type=type_,
                    payload=payload,
                    ack_completion_id=completion_id if ack else None,
                )
            )
        elif st.status == Status.SUSPENDED and self.suspension_satisfied(st):
            self.resume(invocation_id, st)
        self.save(invocation_id, st)

    @staticmethod
    def suspension_satisfied(st: InvocationStatus) -> bool:
        """True if any awaited completion or signal has a notification.

        V7 combinator trees are approximated by "any": resuming early only costs the SDK a
        replay and a new suspension, resuming late would hang.
        """
        waiting = st.waiting
        if waiting is None:
            return True
        return (
            any(c in st.completed_ids for c in waiting.completions)
            or any(s in st.signal_ids for s in waiting.signals)
            or any(n in st.signal_names for n in waiting.names)
        )

    def resume(self, invocation_id: bytes, st: InvocationStatus) -> None:
        transitions.move(st, Event.RESUME)
        st.waiting = None
        self.save(invocation_id, st)
        self.emit(act.StartAttempt(partition=self.partition, invocation_id=invocation_id))


def completion_for(type_: int, completion_id: int, result: Result | None) -> bytes:
    """The completion notification carrying `result` (None: the empty, void completion)."""
    match result:
        case Value():
            return completion_notification(type_, completion_id, value=result.content)
        case Failure():
            return completion_notification(type_, completion_id, failure=(result.code, result.message))
        case Void() | None:
            return completion_notification(type_, completion_id, void=True)


def signal_for(signal: int | str, result: Result) -> bytes:
    """The signal notification carrying `result`."""
    match result:
        case Value():
            return signal_notification(signal, value=result.content)
        case Failure():
            return signal_notification(signal, failure=(result.code, result.message))
        case Void():
            return signal_notification(signal, void=True)
