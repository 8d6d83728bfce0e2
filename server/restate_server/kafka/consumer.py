"""The librdkafka consumer of one subscription, on a thread of its own.

librdkafka's consumer API blocks (``consume`` waits for records, ``close`` leaves the group), so the
event loop never calls it. The thread is the only code that touches the consumer: it polls, runs the
rebalance callbacks (they fire inside ``consume``), and applies what the event loop asked for through
:meth:`ConsumerThread.store`, :meth:`ConsumerThread.set_paused` and :meth:`ConsumerThread.stop` at its
next turn (within :data:`POLL_TIMEOUT`). Everything it learns goes out as :data:`ConsumerEvent` values
through ``deliver`` (which the owner points at ``loop.call_soon_threadsafe``), in the order it learned
it, so a revocation is never overtaken by the records that preceded it.

Offsets: auto-commit is on and auto-store is off (set by the catalogue), so librdkafka commits only
what :meth:`ConsumerThread.store` stored, which the dispatcher does once the invocations are durable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from restate_server.kafka.events import KafkaRecord
from restate_server.observability import metrics

log = logging.getLogger(__name__)
librdkafka_log = logging.getLogger(__name__ + ".librdkafka")

if TYPE_CHECKING:  # librdkafka (~13 ms of every start) loads with the first subscription's consumer
    import confluent_kafka

POLL_TIMEOUT = 0.1  # seconds a consume call may block: bounds how late a store, pause or stop applies
BATCH_SIZE = 1000  # records per consume call (one hand-over to the event loop)
WATERMARK_INTERVAL = 2.0  # seconds between lag refreshes of an idle assignment
ERROR_LOG_INTERVAL = 30.0  # seconds between repeated warnings for the same broker error


class _Repeats(logging.Filter):
    """Lets one librdkafka message per facility (``FAIL``, ``REQTMOUT``…) through per interval.

    librdkafka logs every reconnect attempt of a broker that is down, many times a second.
    """

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        facility = str(record.msg).split(" ", 1)[0]
        now = time.monotonic()
        if now - self._last.get(facility, -ERROR_LOG_INTERVAL) < ERROR_LOG_INTERVAL:
            return False
        self._last[facility] = now
        return True


librdkafka_log.addFilter(_Repeats())

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Assigned:
    """The group gave this consumer these partitions; records follow from the committed offsets."""

    partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Revoked:
    """These partitions were taken away (or lost): nothing more may be stored for them."""

    partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """Records in offset order per partition, and what the broker last said about the partitions."""

    records: tuple[KafkaRecord, ...]
    high_watermarks: dict[TopicPartition, int] = field(default_factory=dict)
    positions: dict[TopicPartition, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Stopped:
    """The thread has closed the consumer; ``error`` says why if it was not asked to."""

    error: str | None


ConsumerEvent = Assigned | Revoked | Batch | Stopped


def _tps(partitions: list[confluent_kafka.TopicPartition]) -> tuple[TopicPartition, ...]:
    return tuple((p.topic, p.partition) for p in partitions)


def _to_record(message: confluent_kafka.Message) -> KafkaRecord:
    import confluent_kafka

    kind, stamp = message.timestamp()
    key = message.key()
    value = message.value()
    return KafkaRecord(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=key if isinstance(key, bytes) or key is None else bytes(key),
        value=value if isinstance(value, bytes) else b"" if value is None else bytes(value),
        timestamp=stamp if kind != confluent_kafka.TIMESTAMP_NOT_AVAILABLE else None,
    )


class ConsumerThread:
    """One subscription's consumer; ``deliver`` is called on this thread, in event order."""

    def __init__(
        self,
        *,
        subscription_id: str,
        config: dict[str, str],
        topic: str,
        deliver: Callable[[ConsumerEvent], None],
        factory: Callable[[dict[str, Any]], confluent_kafka.Consumer] | None = None,
    ) -> None:
        self._subscription_id = subscription_id
        self._config = config
        self._topic = topic
        self._deliver = deliver
        self._factory = factory
        self._lock = threading.Lock()
        self._stores: dict[TopicPartition, int] = {}
        self._paused = False
        self._applied_pause = False  # what the consumer's assignment is in; a new assignment is unpaused
        self._stopping = threading.Event()
        self._fatal: str | None = None
        self._last_logged: dict[int, float] = {}
        self._thread = threading.Thread(target=self._run, name=f"kafka-{subscription_id}", daemon=True)

    # ---- called from the event loop
    def start(self) -> None:
        self._thread.start()

    def store(self, topic: str, partition: int, next_offset: int) -> None:
        """Let the next auto-commit include ``next_offset`` (everything before it is durable)."""
        with self._lock:
            self._stores[(topic, partition)] = next_offset

    def set_paused(self, paused: bool) -> None:
        """Stop (or resume) fetching on every assigned partition; the group membership stays."""
        self._paused = paused

    @property
    def pause_applied(self) -> bool:
        """Whether the assignment is paused now (the thread applies ``set_paused`` at its next turn)."""
        return self._applied_pause

    def stop(self) -> None:
        """Ask the thread to commit what was stored, leave the group and exit (a ``Stopped`` event)."""
        self._stopping.set()

    # ---- the thread
    def _run(self) -> None:
        error: str | None = None
        try:
            self._consume()
        except Exception as exc:  # a consumer that cannot be created or failed fatally: the owner retries
            error = f"{type(exc).__name__}: {exc}"
        self._deliver(Stopped(error=error if error is not None else self._fatal))

    def _consume(self) -> None:
        config: dict[str, Any] = {**self._config, "error_cb": self._on_error, "logger": librdkafka_log}
        if self._factory is None:
            import confluent_kafka

            consumer = confluent_kafka.Consumer(config)
        else:
            consumer = self._factory(config)
        try:
            consumer.subscribe(
                [self._topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
            next_watermarks = time.monotonic() + WATERMARK_INTERVAL
            while not self._stopping.is_set() and self._fatal is None:
                self._apply_stores(consumer)
                if self._paused != self._applied_pause:
                    assignment = consumer.assignment()
                    (consumer.pause if self._paused else consumer.resume)(assignment)
                    self._applied_pause = self._paused
                messages = consumer.consume(num_messages=BATCH_SIZE, timeout=POLL_TIMEOUT)
                records = [_to_record(m) for m in messages if self._is_record(m)]
                now = time.monotonic()
                if records or now >= next_watermarks:
                    partitions = {(r.topic, r.partition) for r in records} if records else None
                    highs, positions = self._watermarks(consumer, partitions)
                    self._deliver(Batch(records=tuple(records), high_watermarks=highs, positions=positions))
                    next_watermarks = now + WATERMARK_INTERVAL
        finally:
            self._apply_stores(consumer)
            consumer.close()

    def _apply_stores(self, consumer: confluent_kafka.Consumer) -> None:
        import confluent_kafka

        with self._lock:
            stores, self._stores = self._stores, {}
        if not stores:
            return
        offsets = [confluent_kafka.TopicPartition(t, p, o) for (t, p), o in stores.items()]
        try:
            consumer.store_offsets(offsets=offsets)
        except confluent_kafka.KafkaException as exc:
            # a partition revoked meanwhile: its new owner starts from the last commit and dedup
            # drops what it re-reads
            log.debug("subscription %s: offsets not stored: %s", self._subscription_id, exc)

    def _watermarks(
        self, consumer: confluent_kafka.Consumer, partitions: set[TopicPartition] | None
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """Cached high watermarks (no broker round trip) and, when idle, fetch positions: for the lag."""
        import confluent_kafka

        assigned = consumer.assignment()
        selected = [tp for tp in assigned if partitions is None or (tp.topic, tp.partition) in partitions]
        highs: dict[TopicPartition, int] = {}
        for tp in selected:
            try:
                _low, high = consumer.get_watermark_offsets(tp, cached=True)
            except confluent_kafka.KafkaException:
                continue
            if high >= 0:
                highs[(tp.topic, tp.partition)] = high
        positions = {}
        if partitions is None and selected:
            positions = {
                (tp.topic, tp.partition): tp.offset for tp in consumer.position(selected) if tp.offset >= 0
            }
        return highs, positions

    def _is_record(self, message: confluent_kafka.Message) -> bool:
        import confluent_kafka

        error = message.error()
        if error is None:
            return True
        if error.code() != confluent_kafka.KafkaError._PARTITION_EOF:
            self._on_error(error)
        return False

    def _on_assign(
        self, consumer: confluent_kafka.Consumer, partitions: list[confluent_kafka.TopicPartition]
    ) -> None:
        log.info("subscription %s: assigned %s", self._subscription_id, _tps(partitions))
        self._applied_pause = False
        self._deliver(Assigned(partitions=_tps(partitions)))

    def _on_revoke(
        self, consumer: confluent_kafka.Consumer, partitions: list[confluent_kafka.TopicPartition]
    ) -> None:
        log.info("subscription %s: revoked %s", self._subscription_id, _tps(partitions))
        self._apply_stores(consumer)  # the commit that follows a revocation includes them
        self._deliver(Revoked(partitions=_tps(partitions)))

    def _on_error(self, error: confluent_kafka.KafkaError) -> None:
        """Broker errors: librdkafka retries connections itself (with backoff); we log and count."""
        metrics.KAFKA_INGRESS_ERRORS.labels(self._subscription_id, error.name()).inc()
        if error.fatal():
            self._fatal = f"fatal Kafka error: {error.str()}"
        now = time.monotonic()
        if now - self._last_logged.get(error.code(), -ERROR_LOG_INTERVAL) >= ERROR_LOG_INTERVAL:
            self._last_logged[error.code()] = now
            log.warning(
                "subscription %s: Kafka error %s: %s", self._subscription_id, error.name(), error.str()
            )
