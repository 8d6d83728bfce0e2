"""A single node trims each partition's log up to what its store has made durable, and no further."""

from __future__ import annotations

from pathlib import Path

import pytest
from restate_server.log.api import TrimGap
from restate_server.log.providers.rocksdb import RocksDbLog
from restate_server.log.records import AnnounceLeader
from restate_server.rocksdb import Database
from restate_server.storage import fsm
from restate_server.storage.transaction import Transaction
from restate_server.worker.log_trimmer import LogTrimmer


async def test_logs_are_trimmed_to_the_durable_applied_lsn(tmp_path: Path) -> None:
    store, log_db = Database(tmp_path / "db", wal=False), Database(tmp_path / "log")
    logs = RocksDbLog(log_db)
    try:
        for partition in (0, 1):
            await logs.acquire(partition, 1)
            for n in range(10):
                await logs.append(partition, [AnnounceLeader(leader_epoch=n)], 1)
        txn = Transaction(store)
        fsm.set_int(txn, 0, fsm.APPLIED_LSN, 6)  # partition 1 has applied nothing yet
        txn.commit()
        await LogTrimmer(store, logs, [0, 1], None, interval=30.0).trim_once()
        assert [(await logs.find_tail(p)).trim_point for p in (0, 1)] == [6, 0]
        with pytest.raises(TrimGap):
            await logs.read(0, 1, 10)
        assert len(await logs.read(0, 7, 10)) == 4
    finally:
        await logs.close()
        log_db.close()
        store.close()
