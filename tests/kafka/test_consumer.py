"""The consumer thread against a real broker (tansu): events in order, offsets, pause, rebalances.

What the dispatcher relies on: records of a partition arrive in offset order; only stored offsets are
committed, so the next member of the group resumes exactly there; a second member joining takes
partitions away with a `Revoked` before it gets any of their records; pausing stops delivery.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable

import pytest
from kafka_broker import CONSUMER_OPTIONS, Broker
from restate_server.kafka import consumer as kc
from restate_server.kafka.catalog import FORCED_CONSUMER_OPTIONS

Events = queue.Queue[kc.ConsumerEvent]


def start(broker: Broker, name: str, group: str = "g") -> tuple[kc.ConsumerThread, Events]:
    events: Events = queue.Queue()
    config = {
        "bootstrap.servers": broker.bootstrap,
        "group.id": group,
        **CONSUMER_OPTIONS,
        **FORCED_CONSUMER_OPTIONS,
    }
    thread = kc.ConsumerThread(subscription_id=name, config=config, topic="t", deliver=events.put)
    thread.start()
    return thread, events


def next_event(events: Events, wanted: type, timeout: float = 30) -> kc.ConsumerEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=0.2)
        except queue.Empty:
            continue
        if isinstance(event, wanted):
            return event
    raise TimeoutError(f"no {wanted.__name__} within {timeout}s")


def records_until(
    events: Events, done: Callable[[list[tuple[int, int]]], bool], timeout: float = 30
) -> list[tuple[int, int]]:
    """(partition, offset) of the records delivered until ``done`` says so."""
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + timeout
    while not done(seen):
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(seen)} records within {timeout}s")
        try:
            event = events.get(timeout=0.2)
        except queue.Empty:
            continue
        if isinstance(event, kc.Batch):
            seen += [(r.partition, r.offset) for r in event.records]
    return seen


def stop(thread: kc.ConsumerThread, events: Events) -> None:
    thread.stop()
    stopped = next_event(events, kc.Stopped)
    assert isinstance(stopped, kc.Stopped)
    assert stopped.error is None


@pytest.fixture
def topic(kafka_broker: Broker) -> Broker:
    kafka_broker.create_topic("t", partitions=2)
    kafka_broker.produce("t", [(None, b"a")] * 10, partition=0)
    kafka_broker.produce("t", [(None, b"b")] * 10, partition=1)
    return kafka_broker


def test_order_stored_offsets_and_resume(topic: Broker) -> None:
    first, events = start(topic, "one")
    assigned = next_event(events, kc.Assigned)
    assert isinstance(assigned, kc.Assigned)
    assert sorted(assigned.partitions) == [("t", 0), ("t", 1)]
    seen = records_until(events, lambda s: len(s) >= 20)
    for partition in (0, 1):
        assert [o for p, o in seen if p == partition] == list(range(10))
    first.store("t", 0, 4)  # records 0..3 of partition 0 are durable, nothing of partition 1
    stop(first, events)

    second, events = start(topic, "two")
    seen = records_until(events, lambda s: len(s) >= 16)
    assert sorted(seen) == sorted([(0, o) for o in range(4, 10)] + [(1, o) for o in range(10)])
    stop(second, events)


def test_pause_stops_delivery_until_resumed(topic: Broker) -> None:
    thread, events = start(topic, "paused")
    next_event(events, kc.Assigned)
    records_until(events, lambda s: len(s) >= 20)
    thread.set_paused(True)
    deadline = time.monotonic() + 10
    while not thread.pause_applied:
        assert time.monotonic() < deadline, "the pause was not applied"
        time.sleep(0.01)
    topic.produce("t", [(None, b"c")] * 5, partition=0)
    # two idle turns of the thread (each ends with a lag refresh) deliver nothing while paused
    idle = [next_event(events, kc.Batch), next_event(events, kc.Batch)]
    assert all(isinstance(b, kc.Batch) and not b.records for b in idle)
    thread.set_paused(False)
    seen = records_until(events, lambda s: len(s) >= 5)
    assert seen == [(0, o) for o in range(10, 15)]
    stop(thread, events)


def test_a_second_member_takes_partitions_with_a_revocation_first(topic: Broker) -> None:
    first, first_events = start(topic, "one")
    next_event(first_events, kc.Assigned)
    records_until(first_events, lambda s: len(s) >= 20)
    first.store("t", 0, 10)
    first.store("t", 1, 10)
    second, second_events = start(topic, "two")
    revoked = next_event(first_events, kc.Revoked, timeout=60)
    assert isinstance(revoked, kc.Revoked)
    mine = next_event(second_events, kc.Assigned, timeout=60)
    theirs = next_event(first_events, kc.Assigned, timeout=60)
    assert isinstance(mine, kc.Assigned)
    assert isinstance(theirs, kc.Assigned)
    assert sorted(mine.partitions + theirs.partitions) == [("t", 0), ("t", 1)]
    (partition,) = [p for _, p in mine.partitions]
    topic.produce("t", [(None, b"d")], partition=partition)
    seen = records_until(second_events, lambda s: bool(s))
    assert seen == [(partition, 10)]  # from the offsets the first member stored before the revocation
    stop(second, second_events)
    stop(first, first_events)
