"""In-memory log provider: the shared local engine over a dict, for tests and the contract suite.

Records are kept encoded, as on disk, so the codec runs on every path a RocksDB log would take.
Reopening is ``MemoryLog(storage=old.storage)``: the storage outlives a closed log.
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_server.log.providers.local import LocalLog, Meta


class MemoryStorage:
    def __init__(self) -> None:
        self.records: dict[int, dict[int, bytes]] = {}
        self.meta: dict[int, Meta] = {}

    def load(self, partition: int) -> tuple[Meta, int]:
        meta = self.meta.get(partition, Meta())
        records = self.records.get(partition)
        last = max(records) if records else 0
        return meta, max(last, meta.trim_point) + 1

    def write(self, batches: Sequence[tuple[int, int, Sequence[bytes]]]) -> None:
        for partition, first, payloads in batches:
            log = self.records.setdefault(partition, {})
            for offset, payload in enumerate(payloads):
                log[first + offset] = payload

    def write_meta(self, partition: int, meta: Meta) -> None:
        self.meta[partition] = meta

    def trim(self, partition: int, meta: Meta) -> None:
        log = self.records.get(partition, {})
        for lsn in [lsn for lsn in log if lsn <= meta.trim_point]:
            del log[lsn]
        self.meta[partition] = meta

    def read(self, partition: int, from_lsn: int, to_lsn: int) -> list[tuple[int, bytes]]:
        log = self.records.get(partition, {})
        return [(lsn, log[lsn]) for lsn in range(from_lsn, to_lsn + 1) if lsn in log]

    def close(self) -> None:
        """The records stay, for a reopen."""


class MemoryLog(LocalLog):
    def __init__(self, storage: MemoryStorage | None = None) -> None:
        self.storage = storage if storage is not None else MemoryStorage()
        super().__init__(self.storage)
