"""One Kafka record → one `Invoke` log record, deterministically (upstream's `EnvelopeBuilder`).

Pure: no Kafka client, no I/O, no clock but the one passed in. Determinism is what makes a record
consumed twice (after a crash or a rebalance) land as the *same* log record in the *same* partition,
where the dedup key drops it:

* the producer is one Kafka partition of one subscription and consumer group, and the sequence is the
  record's offset, which only grows; every Restate partition sees a subsequence of those offsets;
* the partition key comes from the object key for keyed sinks, else from (producer, offset);
* the invocation id is derived from (producer, offset) too, so both copies name one invocation.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Protocol

from restate_server.ids import InvocationId, partition_key_for
from restate_server.kafka.catalog import Subscription
from restate_server.log.records import Invoke, Source
from restate_server.schema.model import HandlerType, Service, ServiceType
from restate_server.schema.options import ServerDefaults, invocation_options


class Services(Protocol):
    """The registry lookup a sink needs (``SchemaRegistry`` satisfies it)."""

    def service(self, name: str) -> Service | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaRecord:
    """What the consumer thread hands over of one Kafka message (copied out of librdkafka)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int | None
    """Milliseconds since the epoch, when the broker or producer set one."""

    @property
    def size(self) -> int:
        """Bytes held in memory while the record is in flight."""
        return len(self.value) + len(self.key or b"") + len(self.topic) + 64


class EventError(Exception):
    """A record that cannot become an invocation (upstream stops the consumer and retries it)."""

    def __init__(self, subscription: Subscription, record: KafkaRecord, cause: str) -> None:
        super().__init__(
            f"subscription {subscription.id}: cannot ingest {record.topic}/{record.partition}"
            f"@{record.offset}: {cause}"
        )


def producer_id(subscription_id: str, group_id: str, topic: str, partition: int) -> str:
    """The dedup producer of one Kafka partition. Never change it: a new name re-admits duplicates."""
    raw = "\0".join((subscription_id, group_id, topic, str(partition))).encode()
    return "kafka:" + hashlib.blake2b(raw, digest_size=16).hexdigest()


def headers(subscription_id: str, record: KafkaRecord) -> list[tuple[str, str]]:
    """The invocation headers upstream 1.7 attaches (the record's own headers are not forwarded)."""
    out = [
        ("kafka.offset", str(record.offset)),
        ("kafka.topic", record.topic),
        ("kafka.partition", str(record.partition)),
    ]
    if record.timestamp is not None:
        out.append(("kafka.timestamp", str(record.timestamp)))
    out.append(("restate.subscription.id", subscription_id))
    if record.key is not None:
        out.append(("kafka.key", base64.urlsafe_b64encode(record.key).decode()))
    return out


def build_invoke(
    *,
    subscription: Subscription,
    producer: str,
    record: KafkaRecord,
    registry: Services,
    config: ServerDefaults,
    now: int,
) -> tuple[int, Invoke]:
    """The partition key and the `Invoke` for `record`, carrying its dedup key `(producer, offset)`."""
    service = registry.service(subscription.service)
    handler = service.handlers.get(subscription.handler) if service is not None else None
    if service is None or handler is None:
        raise EventError(subscription, record, "Service and handler are not registered")
    key: str | None = None
    if service.ty != ServiceType.SERVICE:
        try:
            key = (record.key or b"").decode()
        except UnicodeDecodeError as exc:
            raise EventError(
                subscription, record, f"The Kafka record key must be valid UTF-8: {exc}"
            ) from exc
    workflow_run = handler.ty == HandlerType.WORKFLOW
    if key is not None and workflow_run:
        inv = InvocationId.for_workflow(service.name, key)
    else:
        partition_key = (
            partition_key_for(key) if key is not None else partition_key_for(f"{producer}/{record.offset}")
        )
        inv = InvocationId.deterministic(partition_key, producer, str(record.offset))
    options = invocation_options(service, handler, config)
    invoke = Invoke(
        invocation_id=inv.to_bytes(),
        service=service.name,
        handler=handler.name,
        key=key,
        service_ty=str(service.ty),
        handler_ty=str(handler.ty) if handler.ty is not None else None,
        headers=headers(subscription.id, record),
        body=record.value,
        created_at=now,
        source=Source(kind="subscription", subscription_id=subscription.id),
        completion_retention=int(options.workflow_completion_retention * 1000) if workflow_run else 0,
        journal_retention=int(options.journal_retention * 1000),
        dedup=(producer, record.offset),
    )
    return inv.partition_key, invoke
