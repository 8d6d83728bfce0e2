"""A Kafka record → an `Invoke`: deterministic ids and partition keys, upstream's headers, dedup key."""

from __future__ import annotations

import pytest
from restate_server.config import Config
from restate_server.ids import InvocationId, partition_key_for
from restate_server.kafka.catalog import Subscription
from restate_server.kafka.events import EventError, KafkaRecord, build_invoke, headers, producer_id
from restate_server.log.records import Invoke, decode, encode
from restate_server.schema.model import Handler, HandlerType, Service, ServiceType

SUB = "sub_11XHoawrCiWtv8kzhEyGtsR"


class Registry:
    def __init__(self, *services: Service) -> None:
        self._services = {s.name: s for s in services}

    def service(self, name: str) -> Service | None:
        return self._services.get(name)


COUNTER = Service(
    name="Counter",
    ty=ServiceType.VIRTUAL_OBJECT,
    handlers={"add": Handler(name="add", ty=HandlerType.EXCLUSIVE)},
    deployment_id="dp_1",
)
GREETER = Service(
    name="Greeter", ty=ServiceType.SERVICE, handlers={"greet": Handler(name="greet")}, deployment_id="dp_1"
)
SIGNUP = Service(
    name="Signup",
    ty=ServiceType.WORKFLOW,
    handlers={"run": Handler(name="run", ty=HandlerType.WORKFLOW)},
    deployment_id="dp_1",
    workflow_completion_retention=60.0,
)
REGISTRY = Registry(COUNTER, GREETER, SIGNUP)


def record(offset: int = 7, key: bytes | None = b"k1", value: bytes = b"5") -> KafkaRecord:
    return KafkaRecord(topic="t", partition=2, offset=offset, key=key, value=value, timestamp=1700000000123)


def build(sink: str, rec: KafkaRecord) -> tuple[int, Invoke]:
    subscription = Subscription(id=SUB, source="kafka://c/t", sink=sink)
    producer = producer_id(SUB, SUB, "t", 2)
    return build_invoke(
        subscription=subscription, producer=producer, record=rec, registry=REGISTRY, config=Config(), now=42
    )


def test_object_sink_routes_by_record_key_and_carries_the_dedup_key() -> None:
    partition_key, invoke = build("service://Counter/add", record())
    assert partition_key == partition_key_for("k1")
    assert invoke.key == "k1"
    assert invoke.body == b"5"
    assert invoke.source.kind == "subscription"
    assert invoke.source.subscription_id == SUB
    assert invoke.dedup == (producer_id(SUB, SUB, "t", 2), 7)
    assert not invoke.is_call
    assert decode(encode(invoke)) == invoke  # a string producer survives the log codec


def test_the_same_record_twice_is_the_same_invocation_in_the_same_partition() -> None:
    for sink in ("service://Counter/add", "service://Greeter/greet"):
        first, again, next_one = build(sink, record()), build(sink, record()), build(sink, record(offset=8))
        assert first == again
        assert first[1].invocation_id != next_one[1].invocation_id


def test_service_sink_ignores_the_key_and_spreads_by_producer_and_offset() -> None:
    partition_key, invoke = build("service://Greeter/greet", record(key=None))
    assert invoke.key is None
    assert InvocationId.from_bytes(invoke.invocation_id).partition_key == partition_key
    others = {build("service://Greeter/greet", record(offset=o))[0] for o in range(20)}
    assert len(others) == 20


def test_workflow_run_uses_the_workflow_id_and_its_retention() -> None:
    _, invoke = build("service://Signup/run", record(key=b"alice"))
    assert invoke.invocation_id == InvocationId.for_workflow("Signup", "alice").to_bytes()
    assert invoke.completion_retention == 60_000


def test_headers_are_upstreams() -> None:
    assert headers(SUB, record()) == [
        ("kafka.offset", "7"),
        ("kafka.topic", "t"),
        ("kafka.partition", "2"),
        ("kafka.timestamp", "1700000000123"),
        ("restate.subscription.id", SUB),
        ("kafka.key", "azE="),
    ]
    no_key = KafkaRecord(topic="t", partition=0, offset=0, key=None, value=b"", timestamp=None)
    assert [name for name, _ in headers(SUB, no_key)] == [
        "kafka.offset",
        "kafka.topic",
        "kafka.partition",
        "restate.subscription.id",
    ]


@pytest.mark.parametrize(
    ("sink", "key", "cause"),
    [
        ("service://Nope/x", b"k", "Service and handler are not registered"),
        ("service://Counter/nope", b"k", "Service and handler are not registered"),
        ("service://Counter/add", b"\xff", "The Kafka record key must be valid UTF-8"),
    ],
    ids=["unknown-service", "unknown-handler", "non-utf8-key"],
)
def test_records_that_cannot_become_invocations(sink: str, key: bytes, cause: str) -> None:
    with pytest.raises(EventError, match=cause):
        build(sink, record(key=key))


def test_producer_ids_differ_per_subscription_group_topic_and_partition() -> None:
    ids = {
        producer_id("a", "g", "t", 0),
        producer_id("b", "g", "t", 0),
        producer_id("a", "h", "t", 0),
        producer_id("a", "g", "u", 0),
        producer_id("a", "g", "t", 1),
    }
    assert len(ids) == 5
    assert producer_id("a", "g", "t", 0) == producer_id("a", "g", "t", 0)
