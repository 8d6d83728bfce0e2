"""The event-loop side of one subscription's consumer: records in, durable invocations out.

For each batch the consumer thread hands over, the dispatcher builds one `Invoke` per record and
appends them, grouped by target partition, in offset order (log positions are taken at call time, so
the order of the calls is the order in the logs). A Kafka partition's offset is stored for commit only
once every append holding it, and every earlier one, is durable: after a crash or a rebalance the
group resumes from a committed offset, re-reads a few records, and the partitions' dedup drops them.

Backpressure: consumption pauses while the records read but not yet durable exceed the in-flight
memory budget, or while too many invocations this subscription created are still unfinished (queued
in inboxes or running), and resumes with some hysteresis once both fall back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import Gauge

from restate_server.ids import InvocationId
from restate_server.kafka import consumer as kc
from restate_server.kafka.catalog import Subscription
from restate_server.kafka.events import EventError, Services, build_invoke, producer_id
from restate_server.log.records import Invoke, Record
from restate_server.observability import metrics
from restate_server.schema.options import ServerDefaults
from restate_server.storage import status as st
from restate_server.storage.status import InvocationStatus
from restate_server.worker.actions import InvocationCompleted

log = logging.getLogger(__name__)

MAX_UNFINISHED_INVOCATIONS = 10_000
"""Invocations of one subscription not yet finished before consumption pauses (inbox backlog)."""
RESUME_RATIO = 0.5  # resume once below this fraction of a limit, so pausing does not flap
SWEEP_AGE = 10.0  # seconds after which an unfinished invocation's status is re-read (see `sweep`)
SWEEP_BATCH = 512  # statuses read per sweep


class Worker(Protocol):
    """What the dispatcher needs of the worker (`restate_server.worker.api.WorkerHandle`)."""

    def partition_for(self, partition_key: int) -> int: ...
    def append(self, partition: int, records: Sequence[Record]) -> asyncio.Future[int]: ...
    def wait_completion(self, invocation_id: bytes) -> asyncio.Future[InvocationCompleted]: ...
    def drop_completion(self, invocation_id: bytes, future: asyncio.Future[InvocationCompleted]) -> None: ...
    async def read_status(self, invocation_id: InvocationId) -> InvocationStatus | None: ...


class Control(Protocol):
    """What the dispatcher asks of the consumer thread."""

    def store(self, topic: str, partition: int, next_offset: int) -> None: ...
    def set_paused(self, paused: bool) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    inflight_bytes: int
    unfinished_invocations: int = MAX_UNFINISHED_INVOCATIONS


@dataclass(slots=True, kw_only=True)
class _Appended:
    """Records of one Kafka partition from one batch, durable when all `appends` are."""

    last_offset: int
    appends: list[asyncio.Future[int]]
    size: int
    count: int


@dataclass(slots=True, kw_only=True)
class _Partition:
    topic: str
    partition: int
    producer: str
    in_flight: deque[_Appended] = field(default_factory=deque)
    acked: int | None = None
    """The next offset to commit: every earlier record of the partition is durable."""
    high_watermark: int | None = None
    position: int | None = None


class Dispatcher:
    """Turns a consumer thread's events into appends, offset stores and pause decisions."""

    def __init__(
        self,
        *,
        subscription: Subscription,
        group_id: str,
        registry: Services,
        config: ServerDefaults,
        worker: Worker,
        control: Control,
        limits: Limits,
        on_failure: Callable[[Exception], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._subscription = subscription
        self._group_id = group_id
        self._registry = registry
        self._config = config
        self._worker = worker
        self._control = control
        self._limits = limits
        self._on_failure = on_failure
        self._clock = clock
        self._partitions: dict[kc.TopicPartition, _Partition] = {}
        self._inflight_bytes = 0
        self._unfinished: dict[bytes, tuple[float, asyncio.Future[InvocationCompleted]]] = {}
        self._paused = False
        self._failed = False

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def inflight_bytes(self) -> int:
        return self._inflight_bytes

    @property
    def unfinished(self) -> int:
        return len(self._unfinished)

    def handle(self, event: kc.ConsumerEvent) -> None:
        """One event from the consumer thread (called on the event loop, in the thread's order)."""
        if self._failed:
            return
        match event:
            case kc.Assigned():
                for tp in event.partitions:
                    self._drop_partition(tp)  # assigned again without a revocation: start afresh
                    producer = producer_id(self._subscription.id, self._group_id, *tp)
                    self._partitions[tp] = _Partition(topic=tp[0], partition=tp[1], producer=producer)
                self._update_pause()
            case kc.Revoked():
                for tp in event.partitions:
                    self._drop_partition(tp)
                self._update_pause()
            case kc.Batch():
                self._batch(event)
            case kc.Stopped():
                self._fail(RuntimeError(event.error or "the Kafka consumer stopped"))

    def _drop_partition(self, tp: kc.TopicPartition) -> None:
        """Forget a partition: its appends still in flight finish, but store nothing any more."""
        gone = self._partitions.pop(tp, None)
        if gone is not None:
            self._inflight_bytes -= sum(a.size for a in gone.in_flight)
            self._forget_lag(gone)

    def close(self) -> None:
        """Stop tracking: drop the completion waiters and this subscription's gauges."""
        for invocation_id, (_, future) in self._unfinished.items():
            self._worker.drop_completion(invocation_id, future)
        self._unfinished.clear()
        for state in self._partitions.values():
            self._forget_lag(state)
        _remove_series(metrics.KAFKA_INGRESS_PAUSED, self._subscription.id)
        self._failed = True

    # ---- batches
    def _batch(self, batch: kc.Batch) -> None:
        by_target: dict[int, list[Invoke]] = {}
        touched: dict[kc.TopicPartition, tuple[int, set[int], int, int]] = {}
        now = int(self._clock() * 1000)
        for record in batch.records:
            tp = (record.topic, record.partition)
            state = self._partitions.get(tp)
            if state is None:
                continue  # revoked since it was fetched: its next owner reads it again
            try:
                partition_key, invoke = build_invoke(
                    subscription=self._subscription,
                    producer=state.producer,
                    record=record,
                    registry=self._registry,
                    config=self._config,
                    now=now,
                )
            except EventError as exc:
                self._fail(exc)
                return
            target = self._worker.partition_for(partition_key)
            by_target.setdefault(target, []).append(invoke)
            self._track(invoke.invocation_id)
            _, targets, size, count = touched.get(tp, (0, set(), 0, 0))
            targets.add(target)
            touched[tp] = (record.offset, targets, size + record.size, count + 1)
        try:
            appends = {target: self._worker.append(target, invokes) for target, invokes in by_target.items()}
        except Exception as exc:  # the log is closing: the consumer stops, nothing was stored
            self._fail(exc)
            return
        for tp, (last_offset, targets, size, count) in touched.items():
            self._partitions[tp].in_flight.append(
                _Appended(
                    last_offset=last_offset, appends=[appends[t] for t in targets], size=size, count=count
                )
            )
            self._inflight_bytes += size
        for future in appends.values():
            future.add_done_callback(self._on_durable)
        self._watermarks(batch)
        self._update_pause()

    def _on_durable(self, future: asyncio.Future[int]) -> None:
        if self._failed or future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self._fail(error if isinstance(error, Exception) else RuntimeError(str(error)))
            return
        for state in self._partitions.values():
            acked = 0
            while state.in_flight and all(f.done() for f in state.in_flight[0].appends):
                head = state.in_flight.popleft()
                state.acked = head.last_offset + 1
                self._inflight_bytes -= head.size
                acked += head.count
            if acked:
                self._control.store(state.topic, state.partition, state.acked or 0)
                metrics.KAFKA_INGRESS_REQUESTS.labels(
                    self._subscription.id, state.topic, str(state.partition)
                ).inc(acked)
                self._report_lag(state)
        self._update_pause()

    # ---- unfinished invocations (the inbox backlog)
    def _track(self, invocation_id: bytes) -> None:
        if invocation_id in self._unfinished:
            return  # read twice in this run (a rebalance): one invocation
        future = self._worker.wait_completion(invocation_id)
        self._unfinished[invocation_id] = (self._clock(), future)
        future.add_done_callback(self._finished)

    def _finished(self, future: asyncio.Future[InvocationCompleted]) -> None:
        if future.cancelled():
            return
        self._unfinished.pop(future.result().invocation_id, None)
        self._update_pause()

    async def sweep(self) -> None:
        """Forget tracked invocations that finished unseen.

        A record re-read after a restart is a duplicate the log drops; the invocation it names may have
        finished before this run started waiting for it, so its completion never comes. After
        `SWEEP_AGE` the status table tells: no row (purged) or a completed one means finished.
        """
        cutoff = self._clock() - SWEEP_AGE
        finished = []
        for invocation_id, (tracked_at, _future) in list(self._unfinished.items())[:SWEEP_BATCH]:
            if tracked_at > cutoff:
                break
            status = await self._worker.read_status(InvocationId.from_bytes(invocation_id))
            if status is None or status.status == st.Status.COMPLETED:
                finished.append(invocation_id)
        for invocation_id in finished:
            _, future = self._unfinished.pop(invocation_id)
            self._worker.drop_completion(invocation_id, future)
        if finished:
            self._update_pause()

    # ---- backpressure and lag
    def _update_pause(self) -> None:
        limits = self._limits
        if not self._paused:
            pause = (
                self._inflight_bytes >= limits.inflight_bytes
                or len(self._unfinished) >= limits.unfinished_invocations
            )
        else:
            pause = not (
                self._inflight_bytes < limits.inflight_bytes * RESUME_RATIO
                and len(self._unfinished) < limits.unfinished_invocations * RESUME_RATIO
            )
        if pause == self._paused:
            return
        self._paused = pause
        self._control.set_paused(pause)
        metrics.KAFKA_INGRESS_PAUSED.labels(self._subscription.id).set(1 if pause else 0)
        log.info(
            "subscription %s: consumption %s (%d bytes in flight, %d unfinished invocations)",
            self._subscription.id,
            "paused" if pause else "resumed",
            self._inflight_bytes,
            len(self._unfinished),
        )

    def _watermarks(self, batch: kc.Batch) -> None:
        for tp, high in batch.high_watermarks.items():
            state = self._partitions.get(tp)
            if state is not None:
                state.high_watermark = high
                state.position = batch.positions.get(tp, state.position)
                self._report_lag(state)

    def _report_lag(self, state: _Partition) -> None:
        done = state.acked if state.acked is not None else state.position
        if state.high_watermark is None or done is None:
            return
        lag = max(0, state.high_watermark - done)
        metrics.KAFKA_INGRESS_CONSUMER_LAG.labels(
            self._subscription.id, state.topic, str(state.partition)
        ).set(lag)

    def _forget_lag(self, state: _Partition) -> None:
        _remove_series(
            metrics.KAFKA_INGRESS_CONSUMER_LAG, self._subscription.id, state.topic, str(state.partition)
        )

    def _fail(self, error: Exception) -> None:
        if not self._failed:
            self._failed = True
            self._on_failure(error)


def _remove_series(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):  # never set
        gauge.remove(*labels)
