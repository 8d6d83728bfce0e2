"""The leader side of state history retention: what it proposes, when, and that it stops when done."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import pytest
from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.rocksdb import Database
from restate_server.schema import model
from restate_server.storage import state_history
from restate_server.storage.transaction import Transaction
from restate_server.worker.history_retention import HistoryRetention, retentions
from restate_server.worker.state_machine import Context, apply, history

DEFAULT_S = 10.0
NOW_MS = 1_000_000


def _service(name: str, ty: model.ServiceType, override: float | None = None) -> model.Service:
    return model.Service(
        name=name,
        ty=ty,
        handlers=MappingProxyType({}),
        deployment_id="dp",
        state_history_retention=override,
    )


@dataclasses.dataclass
class _Defaults:
    default_state_history_retention: float = DEFAULT_S


class _Registry:
    def __init__(self, services: list[model.Service]) -> None:
        self.list = services
        self.listeners: list[Callable[[_Registry], None]] = []

    def services(self) -> list[model.Service]:
        return self.list

    def add_listener(self, listener: Callable[[_Registry], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def change(self, services: list[model.Service]) -> None:
        self.list = services
        for listener in self.listeners:
            listener(self)


class _Partition:
    """Applies proposed records to a real store at once, like a processor would, and keeps them."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.records: list[rec.Record] = []
        self.now = 0

    def apply(self, record: rec.Record) -> int:
        ctx = Context(Transaction(self.db), 0, 1, lambda _name: None, now=self.now, lsn=len(self.records) + 1)
        apply(ctx, record)
        ctx.flush()
        ctx.txn.commit()
        self.now = ctx.now
        self.records.append(record)
        return len(self.records)

    def propose(self, partition: int, record: rec.Record) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        future.set_result(self.apply(record))
        return future

    async def wait_applied(self, lsn: int) -> None:
        assert lsn <= len(self.records)

    def trims(self) -> list[rec.TrimStateHistory]:
        return [r for r in self.records if isinstance(r, rec.TrimStateHistory)]


@pytest.fixture
def partition(tmp_path: Path) -> _Partition:
    db = Database(tmp_path / "db")
    yield _Partition(db)
    db.close()


def _retention(registry: _Registry, partition: _Partition) -> HistoryRetention:
    return HistoryRetention(
        config=_Defaults(),
        interval=3600,
        services=registry,
        db=partition.db,
        processors=[partition],
        propose=partition.propose,
        clock=lambda: NOW_MS / 1000,
    )


def _write_events(partition: _Partition, times: list[int]) -> None:
    """History events of Counter/k at the given times (an invocation that sets state at each)."""
    inv = b"\x01" * 24
    partition.apply(
        rec.Invoke(
            invocation_id=inv,
            service="Counter",
            handler="add",
            key="k",
            service_ty="VirtualObject",
            handler_ty="Exclusive",
            headers=[],
            body=b"",
            created_at=0,
        )
    )
    for n, now in enumerate(times):
        entry = pb.SetStateCommandMessage(key=b"c", value=pb.Value(content=b"%d" % n))
        effect = rec.InvokerEffect(
            invocation_id=inv,
            first_command_index=n + 1,
            entries=[(T.SET_STATE_COMMAND, 0, entry.SerializeToString())],
            now=now,
        )
        partition.apply(effect)


def test_effective_retentions_cover_keyed_services_with_overrides() -> None:
    services = [
        _service("Counter", model.ServiceType.VIRTUAL_OBJECT),
        _service("Signup", model.ServiceType.WORKFLOW, override=0.0),
        _service("Greeter", model.ServiceType.SERVICE),
    ]
    assert retentions(services, _Defaults()) == {"Counter": 10_000, "Signup": 0}


async def test_a_new_leader_sends_the_retentions_once(partition: _Partition) -> None:
    registry = _Registry([_service("Counter", model.ServiceType.VIRTUAL_OBJECT)])
    trimmer = _retention(registry, partition)
    trimmer.on_leadership(0)
    await trimmer._sweep(0)
    await trimmer._sweep(0)  # nothing changed, nothing expired: nothing more to say
    assert [t.retention for t in partition.trims()] == [{"Counter": 10_000}]


async def test_expired_history_is_trimmed_in_bounded_records_until_none_is_left(
    partition: _Partition, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "TRIM_BUDGET", 2)
    _write_events(partition, [NOW_MS - 50_000 + i for i in range(5)] + [NOW_MS - 1_000])
    trimmer = _retention(_Registry([_service("Counter", model.ServiceType.VIRTUAL_OBJECT)]), partition)
    trimmer.on_leadership(0)
    await trimmer._sweep(0)
    assert len(partition.trims()) == 3  # 5 expired events, 2 per record
    assert state_history.oldest_ts(partition.db, 0, "Counter") == NOW_MS - 1_000


async def test_a_schema_change_wakes_the_task_and_turning_history_off_removes_it(
    partition: _Partition,
) -> None:
    _write_events(partition, [NOW_MS - 100])
    registry = _Registry([_service("Counter", model.ServiceType.VIRTUAL_OBJECT)])
    trimmer = _retention(registry, partition)
    trimmer.start()
    try:
        trimmer.on_leadership(0)
        await _until(lambda: len(partition.trims()) == 1)
        registry.change([_service("Counter", model.ServiceType.VIRTUAL_OBJECT, override=0.0)])
        await _until(lambda: len(partition.trims()) == 2)
    finally:
        await trimmer.stop()
    assert partition.trims()[-1].retention == {"Counter": 0}
    assert state_history.oldest_ts(partition.db, 0, "Counter") is None


async def _until(check: Callable[[], bool]) -> None:
    """Let the task run until `check` holds (bounded: it needs a handful of loop turns)."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("the retention task did not get there")
