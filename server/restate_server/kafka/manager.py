"""Runs one consumer per subscription, following the catalogue (upstream's subscription controller).

Level-based: every `REFRESH_INTERVAL`, and at once when the admin API says something changed, the
manager reads the subscriptions and clusters from the metadata store and makes the running consumers
match: new subscriptions start, deleted ones stop, changed ones (subscription or cluster properties)
restart. A consumer that fails (broker gone for good, a record that cannot become an invocation, a
fatal Kafka error) is restarted with exponential backoff, as upstream retries it forever.

Several nodes may run this at once: every node's consumer of a subscription joins the same consumer
group, so Kafka hands each partition to one of them, and the dedup key of every record makes a
partition that moves (with a few records read twice) safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from restate_server.config import Config
from restate_server.kafka import catalog, consumer as kc
from restate_server.kafka.catalog import KafkaCluster, Subscription
from restate_server.kafka.dispatcher import Dispatcher, Limits, Worker
from restate_server.metadata.api import MetadataStore
from restate_server.observability import metrics
from restate_server.schema.registry import SchemaRegistry

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 1.0  # seconds between catalogue reads (picks up other nodes' admin changes)
SWEEP_INTERVAL = 2.0  # seconds between sweeps of a dispatcher's unfinished invocations
CLOSE_TIMEOUT = 10.0  # seconds a consumer gets to commit and leave its group when stopped
# upstream's consumer retry policy: exponential from 200 ms, factor 2, at most 10 s, forever
INITIAL_BACKOFF = 0.2
MAX_BACKOFF = 10.0
HEALTHY_AFTER = 30.0  # seconds of running after which a failure starts the backoff afresh


@dataclass(frozen=True, slots=True, kw_only=True)
class _Spec:
    """What a running consumer was started from; a different spec means a restart."""

    subscription: Subscription
    cluster: KafkaCluster

    def config(self) -> dict[str, str]:
        return catalog.consumer_config(self.cluster, self.subscription)

    def same_as(self, other: _Spec) -> bool:
        return self.subscription == other.subscription and self.cluster.properties == other.cluster.properties


class _Runner:
    """One subscription's consumer: started, watched, restarted with backoff, stopped."""

    def __init__(
        self,
        spec: _Spec,
        make_dispatcher: Callable[
            [Subscription, str, kc.ConsumerThread, Callable[[Exception], None]], Dispatcher
        ],
    ) -> None:
        self.spec = spec
        self._make_dispatcher = make_dispatcher
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"kafka-{spec.subscription.id}")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = INITIAL_BACKOFF
        sub_id = self.spec.subscription.id
        while True:
            started = loop.time()
            try:
                await self._consume_once()
            except Exception as exc:
                metrics.KAFKA_INGRESS_ERRORS.labels(sub_id, "consumer_restart").inc()
                if loop.time() - started >= HEALTHY_AFTER:
                    backoff = INITIAL_BACKOFF
                log.warning(
                    "subscription %s: consumer failed (%s); restarting in %.1fs", sub_id, exc, backoff
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _consume_once(self) -> None:
        """Run one consumer until it fails (raises) or the task is cancelled."""
        loop = asyncio.get_running_loop()
        failure: asyncio.Future[None] = loop.create_future()
        stopped: asyncio.Future[None] = loop.create_future()

        def fail(error: Exception) -> None:
            if not failure.done():
                failure.set_exception(error)

        def on_event(event: kc.ConsumerEvent) -> None:
            if isinstance(event, kc.Stopped) and not stopped.done():
                stopped.set_result(None)
            dispatcher.handle(event)

        def deliver(event: kc.ConsumerEvent) -> None:  # on the consumer thread
            with contextlib.suppress(RuntimeError):  # the loop is gone: the process is exiting
                loop.call_soon_threadsafe(on_event, event)

        subscription = self.spec.subscription
        config = self.spec.config()
        thread = kc.ConsumerThread(
            subscription_id=subscription.id, config=config, topic=subscription.topic, deliver=deliver
        )
        dispatcher = self._make_dispatcher(subscription, config["group.id"], thread, fail)
        thread.start()
        log.info(
            "subscription %s: consuming %s into %s", subscription.id, subscription.source, subscription.sink
        )
        try:
            while not failure.done():
                await asyncio.wait([failure], timeout=SWEEP_INTERVAL)
                await dispatcher.sweep()
            failure.result()
        finally:
            dispatcher.close()
            thread.stop()
            try:
                await asyncio.wait_for(asyncio.shield(stopped), CLOSE_TIMEOUT)
            except TimeoutError:
                log.warning(
                    "subscription %s: the consumer did not close within %.0fs", subscription.id, CLOSE_TIMEOUT
                )
            log.info("subscription %s: consumer stopped", subscription.id)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class KafkaIngress:
    """The node's Kafka subscriptions: one consumer each, kept in line with the catalogue."""

    def __init__(
        self, *, config: Config, metadata: MetadataStore, registry: SchemaRegistry, worker: Worker
    ) -> None:
        self._config = config
        self._metadata = metadata
        self._registry = registry
        self._worker = worker
        self._runners: dict[str, _Runner] = {}
        self._missing_cluster_reported: set[str] = set()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kafka-subscriptions")

    def changed(self) -> None:
        """Re-read the catalogue now (the admin API changed it)."""
        self._changed.set()

    async def stop(self) -> None:
        """Stop every consumer; each commits what is durable and leaves its group."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        runners, self._runners = list(self._runners.values()), {}
        await asyncio.gather(*(r.stop() for r in runners))

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            try:
                await self._reconcile()
            except Exception:
                log.exception("cannot read the Kafka subscriptions")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REFRESH_INTERVAL):
                    await self._changed.wait()

    async def _desired(self) -> dict[str, _Spec]:
        subscriptions = await catalog.load_subscriptions(self._metadata)
        clusters = catalog.all_clusters(
            await catalog.load_stored_clusters(self._metadata), self._config.ingress.kafka_clusters
        )
        desired = {}
        for subscription in subscriptions:
            cluster = catalog.find_cluster(clusters, subscription.cluster)
            if cluster is None:
                if subscription.id not in self._missing_cluster_reported:
                    self._missing_cluster_reported.add(subscription.id)
                    log.error(
                        "subscription %s: Kafka cluster '%s' not found; configured clusters: %s",
                        subscription.id,
                        subscription.cluster,
                        [c.name for c in clusters],
                    )
                continue
            desired[subscription.id] = _Spec(subscription=subscription, cluster=cluster)
        return desired

    async def _reconcile(self) -> None:
        desired = await self._desired()
        stopping = [
            runner
            for sub_id, runner in self._runners.items()
            if sub_id not in desired or not runner.spec.same_as(desired[sub_id])
        ]
        for runner in stopping:
            del self._runners[runner.spec.subscription.id]
        await asyncio.gather(*(r.stop() for r in stopping))
        for sub_id, spec in desired.items():
            if sub_id not in self._runners:
                self._runners[sub_id] = _Runner(spec, self._dispatcher)

    def _dispatcher(
        self,
        subscription: Subscription,
        group_id: str,
        thread: kc.ConsumerThread,
        fail: Callable[[Exception], None],
    ) -> Dispatcher:
        return Dispatcher(
            subscription=subscription,
            group_id=group_id,
            registry=self._registry,
            config=self._config,
            worker=self._worker,
            control=thread,
            limits=Limits(inflight_bytes=self._config.ingress.ingestion_inflight_memory_budget),
            on_failure=fail,
        )
