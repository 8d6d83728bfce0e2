"""Leadership: the side effects of the partitions this node leads.

Maps each action to the invoker, the timer service, the outbox shuffle or the waiting ingress
requests (upstream's `leadership/leader_state.rs`), proposes self-generated records tagged with
the leader epoch, and on taking leadership re-derives the work a crash interrupted: running
invocations, pending timers and undelivered outbox messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence

from restate_server.config import Config
from restate_server.invoker.attempt import Snapshot, Transport
from restate_server.invoker.errors import AttemptError
from restate_server.invoker.service import Invoker
from restate_server.log.api import LogProvider
from restate_server.log.records import InvokerEffect, Purge, Record, TruncateOutbox, decode
from restate_server.observability import metrics
from restate_server.rocksdb import Database
from restate_server.schema.model import ServiceType
from restate_server.schema.options import invocation_options
from restate_server.schema.registry import SchemaRegistry
from restate_server.storage import journal, outbox, state, status, timers
from restate_server.storage.transaction import Transaction
from restate_server.worker import actions as act
from restate_server.worker.processor import PartitionProcessor
from restate_server.worker.timers import TimerService
from restate_server.worker.waiters import Waiters

log = logging.getLogger(__name__)


class Leader:
    def __init__(
        self,
        *,
        config: Config,
        db: Database,
        log_provider: LogProvider,
        registry: SchemaRegistry,
        processors: Sequence[PartitionProcessor],
        waiters: Waiters,
        transport: Transport,
        epoch: int,
    ) -> None:
        self.config = config
        self.db = db
        self.log = log_provider
        self.registry = registry
        self.processors = processors
        self.waiters = waiters
        self.epoch = epoch
        self.invoker = Invoker(
            self,
            transport,
            concurrency_limit=config.worker.invoker.concurrent_invocations_limit,
            message_size_limit=config.worker.invoker.message_size_limit,
            message_size_warning=config.worker.invoker.message_size_warning,
        )
        self.timers = TimerService(self._propose_record)
        self._shuffle_queues: dict[int, list[tuple[int, int, bytes]]] = {}
        self._shuffle_tasks: dict[int, asyncio.Task[None]] = {}
        self._cleaner: asyncio.Task[None] | None = None
        self._protocol_cap = config.worker.invoker.max_protocol_version
        self.leading: set[int] = set()
        """Partitions whose leadership this node has taken (their AnnounceLeader was applied)."""

    # ---- lifecycle
    def start(self) -> None:
        self.timers.start()
        self._cleaner = asyncio.get_running_loop().create_task(self._clean_periodically(), name="cleaner")

    async def stop(self) -> None:
        await self.timers.stop()
        for task in [*self._shuffle_tasks.values(), *([self._cleaner] if self._cleaner else [])]:
            task.cancel()
        await asyncio.gather(*self._shuffle_tasks.values(), return_exceptions=True)
        await self.invoker.close()

    def on_leadership(self, partition: int) -> None:
        """Resume what was in flight when the previous leader stopped."""
        self.leading.add(partition)
        metrics.NUM_ACTIVE_PARTITION_LEADERS.set(len(self.leading))
        txn = Transaction(self.db)
        for inv, _st in status.scan_with_status(txn, partition, status.Status.INVOKED):
            self.invoker.start(partition, inv)
        for key in timers.all_timers(txn, partition):
            fire_at, *_ = timers.parse(key)
            self.timers.add(partition, key, fire_at)
        for seq, target, record in outbox.pending(txn, partition):
            self._shuffle(partition, seq, target, record)

    # ---- actions
    def handle(self, partition: int, actions: list[act.Action]) -> None:
        for action in actions:
            metrics.PARTITION_HANDLE_LEADER_ACTIONS.labels(type(action).__name__).inc()
            match action:
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
                case act.SubmitOutcome():
                    self.waiters.submitted(action)
                case act.InvocationCompleted():
                    self.waiters.completed(action)
                case act.RegisterTimer():
                    self.timers.add(action.partition, action.key, action.fire_at)
                case act.NewOutboxMessage():
                    self._shuffle(action.partition, action.seq, action.target_partition, action.record)
                case act.AbortAttempt():
                    self.invoker.abort(action.invocation_id)

    # ---- proposals
    def _propose_record(self, partition: int, record: Record) -> asyncio.Future[int]:
        record.epoch = self.epoch
        return self.log.submit(partition, [record], self.epoch)

    def propose(self, partition: int, effect: InvokerEffect) -> Awaitable[int]:
        return self._propose_record(partition, effect)

    async def wait_applied(self, partition: int, lsn: int) -> None:
        await self.processors[partition].wait_applied(lsn)

    # ---- invoker host
    def snapshot(self, partition: int, invocation_id: bytes) -> Snapshot | AttemptError | None:
        txn = Transaction(self.db)
        st = status.get(txn, partition, invocation_id)
        if st is None or st.status != status.Status.INVOKED:
            return None
        if st.deployment_id is not None:
            deployment = self.registry.deployment(st.deployment_id)
            if deployment is None:
                return AttemptError("RT0011", f"the pinned deployment {st.deployment_id} was removed")
        else:
            deployment = self.registry.latest_deployment(st.service)
            if deployment is None:
                return AttemptError("RT0011", f"no deployment found for service {st.service}")
        service = deployment.services.get(st.service)
        handler = service.handlers.get(st.handler) if service is not None else None
        if service is None or handler is None:
            return AttemptError(
                "RT0011", f"deployment {deployment.id} has no handler {st.service}/{st.handler}"
            )
        options = invocation_options(service, handler, self.config)
        version = st.protocol_version or min(deployment.max_protocol_version, self._protocol_cap)
        keyed = service.ty != ServiceType.SERVICE
        entries = journal.read(txn, partition, invocation_id)
        state_entries = None
        if keyed and not options.enable_lazy_state and st.key is not None:
            state_entries = state.get_all(txn, partition, st.service, st.key)
        return Snapshot(
            partition=partition,
            invocation_id=invocation_id,
            service=st.service,
            handler=st.handler,
            key=st.key,
            keyed=keyed,
            journal=entries,
            commands=st.commands,
            state=state_entries,
            deployment=deployment,
            protocol_version=version,
            pinned=st.deployment_id is not None,
            options=options,
            idempotency_key=st.idempotency_key,
            created_at=st.created_at,
            callees=self.registry.handler,
        )

    # ---- outbox shuffle
    def _shuffle(self, partition: int, seq: int, target: int, record: bytes) -> None:
        self._shuffle_queues.setdefault(partition, []).append((seq, target, record))
        if partition not in self._shuffle_tasks:
            self._shuffle_tasks[partition] = asyncio.get_running_loop().create_task(
                self._deliver(partition), name=f"shuffle-{partition}"
            )

    async def _deliver(self, partition: int) -> None:
        """Deliver the outbox in sequence order; the target drops what it has already seen.

        Delivered rows are removed by a `TruncateOutbox` record, so every replica's outbox agrees.
        """
        try:
            while self._shuffle_queues.get(partition):
                queue, self._shuffle_queues[partition] = self._shuffle_queues[partition], []
                futures = []
                for seq, target, data in queue:
                    record = decode(data)
                    record.dedup = (partition, seq)
                    futures.append(self.log.submit(target, [record], self.epoch))
                await asyncio.gather(*futures)
                metrics.PARTITION_SHUFFLE_MESSAGES.labels(str(partition)).inc(len(queue))
                await self._propose_record(partition, TruncateOutbox(up_to_seq=max(s for s, _, _ in queue)))
        finally:
            del self._shuffle_tasks[partition]

    # ---- retention
    async def _clean_periodically(self) -> None:
        interval = max(self.config.worker.cleanup_interval, 1.0)
        while True:
            await asyncio.sleep(interval)
            self.clean_expired()

    def clean_expired(self) -> None:
        now = int(time.time() * 1000)
        for processor in self.processors:
            txn = Transaction(self.db)
            expired = [
                inv
                for inv, st in status.scan_with_status(txn, processor.partition, status.Status.COMPLETED)
                if st.expires_at is not None and st.expires_at <= now
            ]
            if expired:
                self._propose_record(processor.partition, Purge(invocation_ids=expired, now=now))
