"""How the contract suite opens each provider (and reopens it on the same storage)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from restate_server.etcd import EtcdClient
from restate_server.log.api import LogProvider
from restate_server.log.providers.etcd import EtcdLog
from restate_server.log.providers.memory import MemoryLog, MemoryStorage
from restate_server.log.providers.rocksdb import RocksDbLog
from restate_server.log.records import AnnounceLeader, Record
from restate_server.log.segments import SegmentedLog
from restate_server.metadata.providers.memory import MemoryMetadataStore
from restate_server.rocksdb import Database


class Harness(Protocol):
    async def open(self) -> LogProvider:
        """A provider over this harness's storage (a fresh client every time)."""
        ...

    async def cleanup(self) -> None: ...


class MemoryHarness:
    def __init__(self) -> None:
        self.storage = MemoryStorage()

    async def open(self) -> LogProvider:
        return MemoryLog(self.storage)

    async def cleanup(self) -> None:
        pass


class SegmentsHarness:
    """The segment chain over one memory provider: it must keep the same contract."""

    def __init__(self) -> None:
        self.storage = MemoryStorage()
        self.metadata = MemoryMetadataStore()

    async def open(self) -> LogProvider:
        return SegmentedLog({"memory": MemoryLog(self.storage)}, "memory", self.metadata)

    async def cleanup(self) -> None:
        pass


class RocksDbHarness:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.dbs: list[Database] = []

    async def open(self) -> LogProvider:
        for db in self.dbs:
            db.close()
        self.dbs = [Database(self.path, strict_wal=True)]
        return RocksDbLog(self.dbs[0])

    async def cleanup(self) -> None:
        for db in self.dbs:
            db.close()
        self.dbs = []


class EtcdHarness:
    def __init__(self, endpoints: list[str], root: bytes) -> None:
        self.endpoints = endpoints
        self.root = root
        self.clients: list[EtcdClient] = []

    async def open(self) -> LogProvider:
        client = EtcdClient(self.endpoints)
        self.clients.append(client)
        return EtcdLog(client, root=self.root)

    async def cleanup(self) -> None:
        for client in self.clients:
            await client.close()


def rec(n: int) -> Record:
    """A small record that carries ``n`` (to check order and content)."""
    return AnnounceLeader(leader_epoch=n)


def numbers(entries: list[tuple[int, Record]]) -> list[int]:
    out = []
    for _lsn, record in entries:
        assert isinstance(record, AnnounceLeader)
        out.append(record.leader_epoch)
    return out
