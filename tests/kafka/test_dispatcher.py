"""The dispatcher with a fake worker and consumer: offsets stored only after durability, in order;
appends in offset order; revoked partitions left alone; backpressure pauses and resumes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from restate_server.config import Config
from restate_server.ids import InvocationId
from restate_server.kafka import consumer as kc
from restate_server.kafka.catalog import Subscription
from restate_server.kafka.dispatcher import SWEEP_AGE, Dispatcher, Limits
from restate_server.kafka.events import EventError, KafkaRecord
from restate_server.log.records import Invoke, Record
from restate_server.outcomes import Value
from restate_server.schema.model import Handler, HandlerType, Service, ServiceType
from restate_server.storage import status as st
from restate_server.storage.status import InvocationStatus
from restate_server.worker.actions import InvocationCompleted

SUB = Subscription(id="sub_11XHoawrCiWtv8kzhEyGtsR", source="kafka://c/t", sink="service://Counter/add")
COUNTER = Service(
    name="Counter",
    ty=ServiceType.VIRTUAL_OBJECT,
    handlers={"add": Handler(name="add", ty=HandlerType.EXCLUSIVE)},
    deployment_id="dp_1",
)


class Registry:
    def service(self, name: str) -> Service | None:
        return COUNTER if name == "Counter" else None


class FakeWorker:
    def __init__(self) -> None:
        self.appends: list[tuple[int, list[Invoke], asyncio.Future[int]]] = []
        self.waiting: dict[bytes, asyncio.Future[InvocationCompleted]] = {}
        self.statuses: dict[bytes, InvocationStatus | None] = {}

    def partition_for(self, partition_key: int) -> int:
        return partition_key % 4

    def append(self, partition: int, records: Sequence[Record]) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.appends.append((partition, [r for r in records if isinstance(r, Invoke)], future))
        return future

    def wait_completion(self, invocation_id: bytes) -> asyncio.Future[InvocationCompleted]:
        future: asyncio.Future[InvocationCompleted] = asyncio.get_running_loop().create_future()
        self.waiting[invocation_id] = future
        return future

    def drop_completion(self, invocation_id: bytes, future: asyncio.Future[InvocationCompleted]) -> None:
        self.waiting.pop(invocation_id, None)

    async def read_status(self, invocation_id: InvocationId) -> InvocationStatus | None:
        return self.statuses.get(invocation_id.to_bytes())

    def complete(self, invocation_id: bytes) -> None:
        self.waiting.pop(invocation_id).set_result(
            InvocationCompleted(
                invocation_id=invocation_id, result=Value(content=b""), expires_at=None, idempotent=False
            )
        )


class FakeControl:
    def __init__(self) -> None:
        self.stored: list[tuple[str, int, int]] = []
        self.paused: list[bool] = []

    def store(self, topic: str, partition: int, next_offset: int) -> None:
        self.stored.append((topic, partition, next_offset))

    def set_paused(self, paused: bool) -> None:
        self.paused.append(paused)


DEFAULT_LIMITS = Limits(inflight_bytes=1 << 20)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def records(partition: int, offsets: range, key: bytes = b"k") -> tuple[KafkaRecord, ...]:
    return tuple(
        KafkaRecord(topic="t", partition=partition, offset=o, key=key, value=b"1", timestamp=None)
        for o in offsets
    )


def status(state: str) -> InvocationStatus:
    return InvocationStatus(
        status=state,
        service="Counter",
        handler="add",
        key="k",
        service_ty="VirtualObject",
        handler_ty="Exclusive",
        created_at=0,
        modified_at=0,
        source=[],
    )


class Harness:
    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.worker = FakeWorker()
        self.control = FakeControl()
        self.failures: list[Exception] = []
        self.clock = Clock()
        self.dispatcher = Dispatcher(
            subscription=SUB,
            group_id=SUB.id,
            registry=Registry(),
            config=Config(),
            worker=self.worker,
            control=self.control,
            limits=limits,
            on_failure=self.failures.append,
            clock=self.clock,
        )

    async def durable(self, index: int) -> None:
        self.worker.appends[index][2].set_result(index)
        await asyncio.sleep(0)  # done callbacks run on the next loop turn


async def test_offsets_are_stored_once_durable_and_only_in_order() -> None:
    h = Harness()
    h.dispatcher.handle(kc.Assigned(partitions=(("t", 0),)))
    # keys spread the records over target partitions: one append per target
    h.dispatcher.handle(kc.Batch(records=records(0, range(0, 6), key=b"a")))
    h.dispatcher.handle(kc.Batch(records=records(0, range(6, 9), key=b"b")))
    first = h.worker.appends[0]
    assert [i.dedup[1] for i in first[1] if i.dedup] == [0, 1, 2, 3, 4, 5]  # offset order within a target
    await h.durable(1)
    assert h.control.stored == []  # the later batch is durable, the earlier one is not yet
    await h.durable(0)
    assert h.control.stored == [("t", 0, 9)]
    assert h.dispatcher.inflight_bytes == 0


async def test_a_batch_spanning_targets_is_acked_when_every_target_is_durable() -> None:
    h = Harness()
    h.dispatcher.handle(kc.Assigned(partitions=(("t", 1),)))
    batch = tuple(
        KafkaRecord(topic="t", partition=1, offset=o, key=f"key{o}".encode(), value=b"1", timestamp=None)
        for o in range(40)
    )
    h.dispatcher.handle(kc.Batch(records=batch))
    assert len(h.worker.appends) > 1
    for index in range(len(h.worker.appends) - 1):
        await h.durable(index)
    assert h.control.stored == []
    await h.durable(len(h.worker.appends) - 1)
    assert h.control.stored == [("t", 1, 40)]


async def test_revoked_partitions_are_neither_appended_nor_stored() -> None:
    h = Harness()
    h.dispatcher.handle(kc.Assigned(partitions=(("t", 0), ("t", 1))))
    h.dispatcher.handle(kc.Batch(records=records(0, range(3))))
    h.dispatcher.handle(kc.Revoked(partitions=(("t", 0),)))
    h.dispatcher.handle(kc.Batch(records=records(0, range(3, 5)) + records(1, range(2))))
    assert [len(a[1]) for a in h.worker.appends] == [3, 2]  # partition 0's late records dropped
    await h.durable(0)
    await h.durable(1)
    assert h.control.stored == [("t", 1, 2)]


async def test_an_assignment_without_revocation_starts_the_partition_afresh() -> None:
    h = Harness(Limits(inflight_bytes=1000))
    h.dispatcher.handle(kc.Assigned(partitions=(("t", 0),)))
    h.dispatcher.handle(kc.Batch(records=records(0, range(20))))
    assert h.dispatcher.paused
    h.dispatcher.handle(kc.Assigned(partitions=(("t", 0),)))
    assert h.dispatcher.inflight_bytes == 0
    await h.durable(0)
    assert h.control.stored == []  # the earlier generation's records are not this one's to commit
    assert h.control.paused == [True, False]


async def test_pauses_on_inflight_bytes_and_resumes_when_durable() -> None:
    h = Harness(Limits(inflight_bytes=1000))
    h.dispatcher.handle(kc.Assigned(partitions=(("t", 0),)))
    h.dispatcher.handle(kc.Batch(records=records(0, range(20))))  # ~70 bytes each
    assert h.control.paused == [True]
    assert h.dispatcher.paused
    await h.durable(0)
    assert h.control.paused == [True, False]


async def test_pauses_on_unfinished_invocations_and_resumes_as_they_finish() -> None:
    h = Harness(Limits(inflight_bytes=1 << 20, unfinished_invocations=10))
    h.dispatcher.handle(kc.Assigned(partitions=(("t", 0),)))
    h.dispatcher.handle(kc.Batch(records=records(0, range(10))))
    await h.durable(0)
    assert h.control.paused == [True]  # durable, but still queued in the object's inbox
    for invocation_id in list(h.worker.waiting)[:5]:
        h.worker.complete(invocation_id)
    await asyncio.sleep(0)
    assert h.control.paused == [True]  # 5 left: not below half the limit yet
    h.worker.complete(next(iter(h.worker.waiting)))
    await asyncio.sleep(0)
    assert h.control.paused == [True, False]


async def test_sweep_forgets_invocations_that_finished_unseen() -> None:
    h = Harness(Limits(inflight_bytes=1 << 20, unfinished_invocations=4))
    h.dispatcher.handle(kc.Assigned(partitions=(("t", 0),)))
    h.dispatcher.handle(kc.Batch(records=records(0, range(4))))
    assert h.dispatcher.paused
    ids = list(h.worker.waiting)
    h.worker.statuses[ids[0]] = None  # completed and purged before this run waited for it
    h.worker.statuses[ids[1]] = status(st.Status.COMPLETED)
    h.worker.statuses[ids[2]] = status(st.Status.COMPLETED)
    h.worker.statuses[ids[3]] = status(st.Status.INBOXED)
    await h.dispatcher.sweep()
    assert h.dispatcher.unfinished == 4  # too recent to judge
    h.clock.now += SWEEP_AGE + 1
    await h.dispatcher.sweep()
    assert h.dispatcher.unfinished == 1  # the inboxed one is still waited for
    assert not h.dispatcher.paused


async def test_a_record_that_cannot_be_ingested_fails_the_consumer_before_anything_is_appended() -> None:
    h = Harness()
    h.dispatcher.handle(kc.Assigned(partitions=(("t", 0),)))
    h.dispatcher.handle(kc.Batch(records=records(0, range(2)) + records(0, range(2, 3), key=b"\xff")))
    assert len(h.failures) == 1
    assert isinstance(h.failures[0], EventError)
    assert h.worker.appends == []
    h.dispatcher.handle(kc.Batch(records=records(0, range(3, 4))))
    assert h.worker.appends == []  # a failed dispatcher ignores what still arrives


@pytest.mark.parametrize("error", [None, "KafkaException: broker gone"], ids=["asked", "crashed"])
async def test_a_stopped_consumer_is_reported(error: str | None) -> None:
    h = Harness()
    h.dispatcher.handle(kc.Stopped(error=error))
    assert len(h.failures) == 1
    assert str(h.failures[0]) == (error or "the Kafka consumer stopped")


async def test_a_failed_append_fails_the_consumer_and_stores_nothing() -> None:
    h = Harness()
    h.dispatcher.handle(kc.Assigned(partitions=(("t", 0),)))
    h.dispatcher.handle(kc.Batch(records=records(0, range(2))))
    h.worker.appends[0][2].set_exception(OSError("disk full"))
    await asyncio.sleep(0)
    assert [str(f) for f in h.failures] == ["disk full"]
    assert h.control.stored == []
