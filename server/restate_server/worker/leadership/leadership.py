"""Leadership: which partitions this node leads, at which epoch, and the side effects of those.

Upstream's `partition/leadership/`. A partition is led, here, in two phases:

1. ``become_leader(p, epoch)`` (the processor has caught up): acquire the partition's log at
   ``epoch`` (an older sequencer is fenced; a newer one fences us: give up), then append
   ``AnnounceLeader(epoch)``, retried until it lands. The partition is a *candidate*.
2. When the processor applies that record, the partition is *led*: the work a previous leader left
   is re-derived from the store (invoked invocations resume, timers load, the outbox is delivered),
   and from then on the actions of every applied batch are carried out.

``step_down(p)`` stops the partition's effects at once: its attempts are aborted (no terminal is
proposed), its timers leave the heap, its outbox delivery stops, its waiting requests fail with a
retryable error. The processor keeps applying, as a follower. Actions of a partition not led here
are dropped.

Every record this node proposes to a partition carries the partition's epoch, in the record (the
state machine drops a deposed leader's) and on the append (the log refuses a fenced sequencer). An
append that fails with `Fenced` means another node leads now: the partition steps down and
``on_fenced`` is told, so the cluster layer can react.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import assert_never

from restate_server.config import Config
from restate_server.invoker.attempt import Snapshot, Transport
from restate_server.invoker.clock import Clock, LoopClock
from restate_server.invoker.errors import AttemptError
from restate_server.invoker.service import Invoker
from restate_server.log.api import Fenced, LogProvider, failed
from restate_server.log.records import AnnounceLeader, InvokerEffect, Record, TimerFired, TruncateOutbox
from restate_server.observability import metrics
from restate_server.rocksdb import Database
from restate_server.schema.registry import SchemaRegistry
from restate_server.storage import keys, outbox, timers
from restate_server.storage.transaction import Transaction
from restate_server.tasks import Policy, Supervisor
from restate_server.worker import actions as act, scan
from restate_server.worker.errors import WorkerUnavailable
from restate_server.worker.history_retention import HistoryRetention
from restate_server.worker.leadership.outbox import OutboxShuffle
from restate_server.worker.leadership.proposals import until_landed
from restate_server.worker.leadership.snapshot import read_snapshot
from restate_server.worker.processor import PartitionProcessor
from restate_server.worker.timers import TimerService
from restate_server.worker.waiters import Waiters

log = logging.getLogger(__name__)

Deliver = Callable[[int, Sequence[Record]], asyncio.Future[int]]
"""(target partition, records): append records to another partition's log, wherever it is led."""
OnFenced = Callable[[int, int], None]
"""(partition, our epoch): another sequencer took the partition's log; we stepped down."""


class Phase(enum.Enum):
    CANDIDATE = "candidate"  # AnnounceLeader being appended or not yet applied
    LEADER = "leader"  # announced and applied: effects run


@dataclass(slots=True, eq=False)
class _Led:
    partition: int
    epoch: int
    phase: Phase
    shuffle: OutboxShuffle


class Leadership:
    """Per-partition leadership of one node; implements the invoker's `InvokerHost`."""

    def __init__(
        self,
        *,
        config: Config,
        db: Database,
        log_provider: LogProvider,
        registry: SchemaRegistry,
        processors: Mapping[int, PartitionProcessor],
        waiters: Waiters,
        transport: Transport,
        supervisor: Supervisor,
        on_fenced: OnFenced | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.log = log_provider
        self.registry = registry
        self.processors = processors
        self.waiters = waiters
        self.supervisor = supervisor
        self.on_fenced = on_fenced
        self._led: dict[int, _Led] = {}
        self.invoker = Invoker(
            self,
            transport,
            concurrency_limit=config.worker.invoker.concurrent_invocations_limit,
            message_size_limit=config.worker.invoker.message_size_limit,
            message_size_warning=config.worker.invoker.message_size_warning,
            clock=clock,
        )
        self.timers = TimerService(self._propose_timer, clock=clock)
        self.history = HistoryRetention(
            config=config,
            interval=max(config.worker.cleanup_interval, 1.0),
            services=registry,
            db=db,
            processors=processors,
            propose=self._propose,
            clock=(clock or LoopClock()).time,
        )
        self.deliver: Deliver = self.append
        """Where outbox messages for other partitions go (a cluster routes them to their leaders)."""
        for processor in processors.values():
            self.attach(processor)

    def start(self) -> None:
        self.supervisor.spawn("timer-service", self.timers.run, Policy.RESTART)
        self.history.start()

    async def stop(self) -> None:
        for partition in list(self._led):
            self.step_down(partition)
        await self.history.stop()
        await self.invoker.close()

    def attach(self, processor: PartitionProcessor) -> None:
        """Carry out (when led) the actions of a processor, e.g. one a cluster node starts later;
        the processor must also be in the `processors` mapping given at construction."""
        processor.on_actions = self.handle
        processor.on_announced = self._announced

    # ---- the leadership API (the cluster layer calls these)
    def epoch(self, partition: int) -> int | None:
        """The epoch this node leads (or is becoming leader of) the partition with; None: not ours."""
        led = self._led.get(partition)
        return None if led is None else led.epoch

    def is_leader(self, partition: int) -> bool:
        """Whether the partition's effects run here (announced and applied)."""
        led = self._led.get(partition)
        return led is not None and led.phase is Phase.LEADER

    @property
    def led_partitions(self) -> list[int]:
        return sorted(p for p, led in self._led.items() if led.phase is Phase.LEADER)

    async def become_leader(self, partition: int, epoch: int) -> bool:
        """Acquire the partition's log at ``epoch`` and announce it; False if fenced or stopped.

        Returns once `AnnounceLeader` is durable; the effects start when it is applied.
        """
        current = self._led.get(partition)
        if current is not None:
            if current.epoch == epoch:
                return True
            self.step_down(partition)
        try:
            await self.log.acquire(partition, epoch)
        except Fenced as exc:
            log.warning("partition %d: cannot lead at epoch %d: %s", partition, epoch, exc)
            return False
        led = self._led[partition] = _Led(
            partition=partition,
            epoch=epoch,
            phase=Phase.CANDIDATE,
            shuffle=OutboxShuffle(
                partition,
                lambda target, record: self.deliver(target, [record]),
                lambda seq: self.propose_until_landed(partition, TruncateOutbox(up_to_seq=seq)),
            ),
        )
        try:
            await self.propose_until_landed(partition, AnnounceLeader(leader_epoch=epoch))
        except (Fenced, WorkerUnavailable) as exc:
            log.warning("partition %d: announcing leader epoch %d failed: %s", partition, epoch, exc)
            return False
        return self._led.get(partition) is led

    def step_down(self, partition: int) -> None:
        """Stop the partition's effects now; the processor goes on applying as a follower."""
        led = self._led.pop(partition, None)
        if led is None:
            return
        log.info("partition %d: stepping down from leader epoch %d", partition, led.epoch)
        self.timers.drop_partition(partition)
        self.history.on_step_down(partition)
        self.supervisor.cancel_soon(_outbox_task(partition))
        self.supervisor.cancel_soon(_resume_task(partition))
        for invocation_id, state in list(self.invoker.invocations.items()):
            if state.partition == partition:
                self.invoker.abort(invocation_id)
        self.waiters.fail_partition(
            partition, WorkerUnavailable(f"partition {partition} is no longer led by this node; retry")
        )

    # ---- applied records
    def _announced(self, partition: int, leader_epoch: int) -> None:
        led = self._led.get(partition)
        if led is None:
            return
        if leader_epoch > led.epoch:
            self._fenced(partition, led.epoch, f"leader epoch {leader_epoch} was announced")
        elif leader_epoch == led.epoch and led.phase is Phase.CANDIDATE:
            self._start_effects(led)

    def _start_effects(self, led: _Led) -> None:
        """Lead from now on, and resume what was in flight when the previous leader stopped.

        The outbox is loaded at once (it is short: delivered rows are truncated), so that its order
        holds against messages the next batches add; running invocations and timers, which can be
        millions, are loaded by a task in steps (`scan`), while new actions are already carried out
        (both paths tolerate seeing the same invocation or timer twice).
        """
        partition = led.partition
        led.phase = Phase.LEADER
        for seq, target, record in outbox.pending(Transaction(self.db), partition):
            led.shuffle.enqueue(seq, target, record)
        self.supervisor.spawn(_outbox_task(partition), led.shuffle.run, Policy.RESTART)
        self.supervisor.spawn(_resume_task(partition), lambda: self._resume(led), Policy.RETRY)
        self.history.on_leadership(partition)
        log.info("partition %d: leading at epoch %d", partition, led.epoch)

    async def _resume(self, led: _Led) -> None:
        partition = led.partition
        prefix = keys.table(keys.INVOKED, partition)  # the index: not every retained status row
        async for rows in scan.chunks(self.db, prefix):
            for key, _ in rows:
                self.invoker.start(partition, key[len(prefix) :])
        async for rows in scan.chunks(self.db, keys.table(keys.TIMER, partition)):
            for key, _ in rows:
                fire_at, *_ = timers.parse(key)
                self.timers.add(partition, key, fire_at)

    def handle(self, partition: int, actions: list[act.Action]) -> None:
        """Carry out a batch's actions if the partition is led here; a follower drops them."""
        led = self._led.get(partition)
        if led is None:
            return
        for action in actions:
            metrics.PARTITION_HANDLE_LEADER_ACTIONS.labels(type(action).__name__).inc()
            match action:
                case act.SubmitOutcome():
                    self.waiters.submitted(action)
                case act.InvocationCompleted():
                    self.waiters.completed(action)
                case _ if led.phase is not Phase.LEADER:
                    pass  # re-derived from the store when the announcement is applied
                case act.StartAttempt():
                    self.invoker.start(action.partition, action.invocation_id)
                case act.ForwardNotification():
                    self.invoker.notify(
                        action.invocation_id,
                        action.journal_index,
                        action.type,
                        action.payload,
                        action.ack_completion_id,
                    )
                case act.RegisterTimer():
                    self.timers.add(action.partition, action.key, action.fire_at)
                case act.NewOutboxMessage():
                    led.shuffle.enqueue(action.seq, action.target_partition, action.record)
                case act.AbortAttempt():
                    self.invoker.abort(action.invocation_id)
                case _:
                    assert_never(action)

    # ---- appends
    def propose(self, partition: int, effect: InvokerEffect) -> Awaitable[int]:
        """The invoker's effects (`InvokerHost`)."""
        return self._propose(partition, effect)

    def _propose(self, partition: int, record: Record) -> asyncio.Future[int]:
        """Append a self-proposed record, tagged with the partition's leader epoch."""
        led = self._led.get(partition)
        if led is None:
            return failed(WorkerUnavailable(f"partition {partition} is not led by this node"))
        record.epoch = led.epoch
        future = self.log.submit(partition, [record], led.epoch)
        _when_done(future, lambda f: self._check_fenced(partition, led.epoch, f))
        return future

    def _propose_timer(self, partition: int, record: TimerFired) -> asyncio.Future[int]:
        return self._propose(partition, record)

    async def propose_until_landed(self, partition: int, record: Record) -> int:
        what = f"partition {partition}: proposing {type(record).__name__}"
        return await until_landed(lambda: self._propose(partition, record), what)

    def append(self, partition: int, records: Sequence[Record]) -> asyncio.Future[int]:
        """Append records from outside the leader (requests, outbox messages, Kafka events) to a led
        partition; the position in the log is taken now.

        Fails only with `WorkerUnavailable`: the partition is not led here, or the log refused.
        """
        led = self._led.get(partition)
        if led is None:
            return failed(WorkerUnavailable(f"partition {partition} has no leader on this node; retry"))
        appended = self.log.submit(partition, records, led.epoch)
        result: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def done(future: asyncio.Future[int]) -> None:
            self._check_fenced(partition, led.epoch, future)
            if result.done():
                return
            error = future.exception()
            if error is None:
                result.set_result(future.result())
            else:
                unavailable = WorkerUnavailable(f"partition {partition}: cannot append to the log: {error}")
                unavailable.__cause__ = error
                result.set_exception(unavailable)

        _when_done(appended, done)
        return result

    def _check_fenced(self, partition: int, epoch: int, future: asyncio.Future[int]) -> None:
        error = None if future.cancelled() else future.exception()
        if isinstance(error, Fenced):
            self._fenced(partition, epoch, str(error))

    def _fenced(self, partition: int, epoch: int, reason: str) -> None:
        led = self._led.get(partition)
        if led is None or led.epoch != epoch:
            return  # already stepped down (or leading again at another epoch)
        log.warning("partition %d: fenced at leader epoch %d (%s)", partition, epoch, reason)
        self.step_down(partition)
        if self.on_fenced is not None:
            self.on_fenced(partition, epoch)

    # ---- invoker host
    def snapshot(self, partition: int, invocation_id: bytes) -> Snapshot | AttemptError | None:
        if not self.is_leader(partition):
            return None
        return read_snapshot(self.db, self.registry, self.config, partition, invocation_id)

    async def wait_applied(self, partition: int, lsn: int) -> None:
        await self.processors[partition].wait_applied(lsn)


def _when_done(future: asyncio.Future[int], callback: Callable[[asyncio.Future[int]], None]) -> None:
    """Run ``callback`` once the append is decided; now if it already is (a refused append), so a
    fenced partition has stepped down by the time its caller sees the error."""
    if future.done():
        callback(future)
    else:
        future.add_done_callback(callback)


def _outbox_task(partition: int) -> str:
    return f"outbox-{partition}"


def _resume_task(partition: int) -> str:
    return f"resume-{partition}"
