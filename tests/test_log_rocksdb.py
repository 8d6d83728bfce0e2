"""The RocksDB log provider: order, durability across reopen, trimming keeps LSNs monotonic."""

from __future__ import annotations

from pathlib import Path

from restate_server.log.providers.rocksdb import RocksDbLog
from restate_server.log.records import AnnounceLeader, Invoke, Record, Source
from restate_server.rocksdb import Database


def _invoke(n: int) -> Invoke:
    return Invoke(
        invocation_id=bytes(24),
        service="S",
        handler="h",
        key=None,
        service_ty="Service",
        handler_ty=None,
        headers=[("a", "b")],
        body=str(n).encode(),
        created_at=n,
        source=Source(kind="ingress"),
    )


async def test_appends_are_read_back_in_order_after_reopen(tmp_path: Path) -> None:
    db = Database(tmp_path / "log")
    log = RocksDbLog(db)
    seen: list[tuple[int, int, int]] = []
    log.set_listener(lambda p, first, records: seen.append((p, first, len(records))))
    assert await log.append(0, [_invoke(1), _invoke(2)]) == 2
    futures = [log.submit(1, [_invoke(3)]), log.submit(0, [AnnounceLeader(leader_epoch=7)])]
    assert [await f for f in futures] == [1, 3]
    assert seen == [(0, 1, 2), (1, 1, 1), (0, 3, 1)]
    await log.close()
    db.close()

    reopened = RocksDbLog(Database(tmp_path / "log"))
    records: list[tuple[int, Record]] = list(reopened.read(0, 1))
    assert [lsn for lsn, _ in records] == [1, 2, 3]
    first = records[0][1]
    assert isinstance(first, Invoke)
    assert first.body == b"1"
    assert first.headers == [("a", "b")]
    assert isinstance(records[2][1], AnnounceLeader)
    assert records[2][1].leader_epoch == 7
    assert reopened.tail(0) == 4


async def test_trim_never_rewinds_the_next_lsn(tmp_path: Path) -> None:
    db = Database(tmp_path / "log")
    log = RocksDbLog(db)
    for n in range(5):
        await log.append(0, [_invoke(n)])
    log.trim(0, 5)  # everything applied: the last record must stay
    assert [lsn for lsn, _ in log.read(0, 1)] == [5]
    await log.close()
    db.close()
    reopened = RocksDbLog(Database(tmp_path / "log"))
    assert reopened.tail(0) == 6
    assert await reopened.append(0, [_invoke(9)]) == 6
