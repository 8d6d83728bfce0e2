"""A partition state machine over a real RocksDB store, and builders for the records it applies.

`TestEnv.apply(*records)` applies the records as one batch, exactly as the partition processor
does (one Context and one transaction per batch, committed at the end) and returns the actions.
Journal entries are built from the real protobuf messages, so a test reads like the exchange an
SDK would have with the server.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf.message import Message
from restate_server.ids import InvocationId, partition_key_for
from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MESSAGE_CLASSES
from restate_server.rocksdb import Database
from restate_server.storage import fsm, inbox, journal, outbox, promises, state, state_history, status, timers
from restate_server.storage.status import InvocationStatus
from restate_server.storage.transaction import Transaction
from restate_server.worker import actions as act
from restate_server.worker.state_machine import Context, apply

# service -> (service type, {handler: handler type}), as the schema registry answers
SERVICES: dict[str, tuple[str, dict[str, str | None]]] = {
    "Greeter": ("Service", {"greet": None}),
    "Counter": ("VirtualObject", {"add": "Exclusive", "get": "Shared"}),
    "Signup": ("Workflow", {"run": "Workflow", "click": "Shared"}),
}
START = 1_000  # the store's clock before the first record
DAY_MS = 86_400_000

Entry = tuple[int, int, bytes]
_TYPES: dict[type[Message], int] = {cls: type_ for type_, cls in MESSAGE_CLASSES.items()}


def lookup(name: str) -> tuple[str, dict[str, str | None]] | None:
    return SERVICES.get(name)


class TestEnv:
    """One partition (of `num_partitions`) whose store lives in a temporary directory."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, path: Path, *, partition: int = 0, num_partitions: int = 1) -> None:
        self.db = Database(path)
        self.partition = partition
        self.num_partitions = num_partitions
        self.now = START
        self.lsn = 0  # the log position of the last record applied

    def close(self) -> None:
        self.db.close()

    # ---- applying
    def apply(self, *records: rec.Record) -> list[act.Action]:
        """Apply the records as one batch (one transaction) and return the actions they produced."""
        ctx = Context(Transaction(self.db), self.partition, self.num_partitions, lookup, now=self.now)
        for record in records:
            self.lsn += 1
            ctx.lsn = self.lsn
            apply(ctx, record)
        ctx.flush()
        self.now = ctx.now
        ctx.txn.commit()
        return ctx.actions

    def apply_each(self, *records: rec.Record) -> list[act.Action]:
        """Apply each record in its own batch, as a replay after every record would."""
        return [action for record in records for action in self.apply(record)]

    # ---- tables
    def _txn(self) -> Transaction:
        return Transaction(self.db)

    def status(self, inv: bytes) -> InvocationStatus | None:
        return status.get(self._txn(), self.partition, inv)

    def must_status(self, inv: bytes) -> InvocationStatus:
        st = self.status(inv)
        assert st is not None, f"no status row for {inv.hex()}"
        return st

    def journal(self, inv: bytes) -> list[rec.JournalEntry]:
        return journal.read(self._txn(), self.partition, inv)

    def journal_types(self, inv: bytes) -> list[int]:
        return [entry.type for entry in self.journal(inv)]

    def state(self, service: str, key: str) -> dict[bytes, bytes]:
        return dict(state.get_all(self._txn(), self.partition, service, key))

    def history(self, service: str, key: str) -> list[state_history.Event]:
        """The object's whole state history, oldest first."""
        last = (2**64 - 1, 2**64 - 1)
        return state_history.page(self.db, self.partition, service, key, first=(0, 0), last=last, limit=10**6)

    def timers(self) -> list[bytes]:
        return timers.all_timers(self._txn(), self.partition)

    def outbox(self) -> list[tuple[int, int, rec.Record]]:
        """Undelivered messages: (seq, target partition, decoded record)."""
        return [
            (seq, target, rec.decode(data))
            for seq, target, data in outbox.pending(self._txn(), self.partition)
        ]

    def lock_holder(self, service: str, key: str) -> bytes | None:
        return inbox.lock_holder(self._txn(), self.partition, service, key)

    def promise(self, service: str, key: str, name: str) -> promises.Promise | None:
        return promises.get(self._txn(), self.partition, service, key, name)

    def leader_epoch(self) -> int:
        return fsm.get_int(self._txn(), self.partition, fsm.LEADER_EPOCH)

    def dump(self) -> list[tuple[bytes, bytes]]:
        """Every row of the store, in key order: two stores are equal when their dumps are."""
        return list(self.db.scan(b"\x00", b"\xff"))


# ---- record builders


def invocation_id(n: int, key: str | None = None) -> bytes:
    pk = partition_key_for(key) if key is not None else partition_key_for(f"unkeyed-{n}")
    return InvocationId.deterministic(pk, "test", str(n)).to_bytes()


def invoke(
    service: str = "Greeter",
    handler: str | None = None,
    *,
    n: int = 1,
    key: str | None = None,
    inv: bytes | None = None,
    body: bytes = b"input",
    headers: list[tuple[str, str]] | None = None,
    created_at: int = START,
    **fields: object,
) -> rec.Invoke:
    """An Invoke as the ingress builds it; types come from SERVICES, the id from `n` and `key`."""
    service_ty, handlers = SERVICES[service]
    handler = handler if handler is not None else next(iter(handlers))
    return rec.Invoke(
        invocation_id=inv if inv is not None else invocation_id(n, key),
        service=service,
        handler=handler,
        key=key,
        service_ty=service_ty,
        handler_ty=handlers[handler],
        headers=headers or [],
        body=body,
        created_at=created_at,
        **fields,  # type: ignore[arg-type]
    )


def command(message: Message, flags: int = 0) -> Entry:
    """A journal entry from a protobuf message; the type comes from the message class."""
    return (_TYPES[type(message)], flags, message.SerializeToString())


def raw(type_: int, payload: bytes, flags: int = 0) -> Entry:
    return (type_, flags, payload)


def effect(
    inv: bytes,
    *entries: Entry,
    first: int = 1,
    terminal: rec.Terminal | None = None,
    now: int = START + 100,
    pin: tuple[str, int] | None = None,
    epoch: int = 0,
) -> rec.InvokerEffect:
    """What an attempt proposes: commands starting at command index `first` (1 = after Input)."""
    return rec.InvokerEffect(
        invocation_id=inv,
        first_command_index=first,
        entries=list(entries),
        terminal=terminal,
        now=now,
        pin=pin,
        epoch=epoch,
    )


def output(value: bytes) -> Entry:
    return command(pb.OutputCommandMessage(value=pb.Value(content=value)))


def output_failure(code: int, message: str) -> Entry:
    return command(pb.OutputCommandMessage(failure=pb.Failure(code=code, message=message)))


def end_with(inv: bytes, value: bytes, *, first: int = 1, now: int = START + 100) -> rec.InvokerEffect:
    """The attempt writes its Output command and ends."""
    return effect(inv, output(value), first=first, terminal=rec.Ended(), now=now)


def suspended(*completions: int, signals: tuple[int, ...] = (), names: tuple[str, ...] = ()) -> rec.Suspended:
    return rec.Suspended(completions=completions, signals=signals, names=names)


def call(
    service: str, handler: str, *, key: str = "", parameter: bytes = b"p", cid: int = 2, id_idx: int = 1
) -> Entry:
    return command(
        pb.CallCommandMessage(
            service_name=service,
            handler_name=handler,
            key=key,
            parameter=parameter,
            invocation_id_notification_idx=id_idx,
            result_completion_id=cid,
        )
    )


def value(content: bytes) -> rec.Value:
    return rec.Value(content=content)
