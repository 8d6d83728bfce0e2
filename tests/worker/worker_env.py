"""A node's worker in one process: processors over a memory log whose writes can fail, a real store.

`FlakyStorage` makes the log's writes fail (as a full disk does: the write raises, the appends fail,
nothing is written) until told otherwise; `WorkerEnv` wires processors, the supervisor and the
leadership as the node does, on a virtual clock, without a network (no deployment is registered, so
an attempt never opens a stream).
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from invoker_fakes import FakeClock
from restate_server.config import Config
from restate_server.invoker.attempt import Transport
from restate_server.log.providers.memory import MemoryLog, MemoryStorage
from restate_server.log.records import Record
from restate_server.metadata.providers.memory import MemoryMetadataStore
from restate_server.rocksdb import Database
from restate_server.schema.registry import SchemaRegistry
from restate_server.storage.transaction import Transaction
from restate_server.tasks import Policy, Supervisor
from restate_server.worker.leadership.leadership import Leadership
from restate_server.worker.processor import PartitionProcessor
from restate_server.worker.waiters import Waiters
from sm_env import lookup


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


class FlakyStorage(MemoryStorage):
    """Memory storage whose writes fail while `full` is set, or for the next `failures` writes."""

    def __init__(self) -> None:
        super().__init__()
        self.full = False
        self.failures = 0
        self.writes = 0

    def write(self, batches: Sequence[tuple[int, int, Sequence[bytes]]]) -> None:
        if self.full or self.failures:
            self.failures = max(0, self.failures - 1)
            raise disk_full()
        self.writes += 1
        super().write(batches)


async def eventually(check: Callable[[], Any]) -> Any:
    """Yield to the loop until `check()` is truthy (a deadline, not a sleep that decides)."""
    async with asyncio.timeout(5):
        while not (value := check()):  # noqa: ASYNC110 - the state polled has no event of its own
            await asyncio.sleep(0.001)
    return value


class WorkerEnv:
    __test__ = False

    def __init__(self, path: Path, *, num_partitions: int = 2) -> None:
        self.db = Database(path / "db", wal=False)
        self.storage = FlakyStorage()
        self.log = MemoryLog(self.storage)
        self.clock = FakeClock()
        self.fatal: list[tuple[str, BaseException]] = []
        self.supervisor = Supervisor(on_fatal=lambda name, error: self.fatal.append((name, error)))
        self.waiters = Waiters()
        self.fenced: list[tuple[int, int]] = []
        self.processors = {
            p: PartitionProcessor(p, num_partitions, self.db, self.log, lookup) for p in range(num_partitions)
        }
        self.leadership = Leadership(
            config=Config(),
            db=self.db,
            log_provider=self.log,
            registry=SchemaRegistry(MemoryMetadataStore()),
            processors=self.processors,
            waiters=self.waiters,
            transport=Transport(signer=None, additional_headers={}),
            supervisor=self.supervisor,
            on_fenced=lambda partition, epoch: self.fenced.append((partition, epoch)),
            clock=self.clock,
        )

    async def start(self) -> None:
        for processor in self.processors.values():
            await processor.replay()
            self.supervisor.spawn(f"partition-{processor.partition}", processor.run, Policy.FATAL)
        self.leadership.start()

    async def lead_all(self, epoch: int = 1) -> None:
        for partition in self.processors:
            assert await self.leadership.become_leader(partition, epoch)
        await eventually(lambda: self.leadership.led_partitions == sorted(self.processors))

    async def applied(self, partition: int) -> None:
        """Wait until the partition applied everything its log holds."""
        tail = await self.log.find_tail(partition)
        await self.processors[partition].wait_applied(tail.next_lsn - 1)

    async def append(self, partition: int, *records: Record, epoch: int) -> int:
        """Append as some sequencer of `epoch` would (the leader here, or another node)."""
        return await self.log.append(partition, list(records), epoch)

    def txn(self) -> Transaction:
        return Transaction(self.db)

    async def close(self) -> None:
        await self.leadership.stop()
        await self.supervisor.stop()
        await self.log.close()
        self.db.close()
