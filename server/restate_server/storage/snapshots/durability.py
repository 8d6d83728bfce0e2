"""How far a partition's log may be trimmed, and what a replica has made durable.

A record may leave the log once no one can need it again: every replica must have it in its store
durably (else a crash of that replica would need it to replay), and, with a snapshot repository, the
oldest kept snapshot must cover it (else a new or wiped replica, which starts from a snapshot, would
find a gap). Upstream calls this the durability point (`worker.durability-mode`, default `balanced`
with snapshots and `replica-set-only` without; this is its stricter `snapshot-and-replica-set`).

The partition store's WAL is never fsynced (it survives a killed process, not a power loss), so
"durable" means flushed to SST files: a replica's durable applied LSN is its applied LSN read just
before a flush.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from restate_server.rocksdb import Database
from restate_server.storage.snapshots import rows


def trim_point(*, durable_lsns: Sequence[int], archived_lsn: int | None, snapshots_enabled: bool) -> int:
    """The highest LSN the partition's log may be trimmed to (0: trim nothing).

    `durable_lsns` holds the durable applied LSN of every replica of the partition (one for a single
    node); a replica that has not reported one yet counts as 0. `archived_lsn` is the applied LSN of the
    oldest snapshot kept (None: no snapshot yet, or unknown).

    With snapshots: min(every replica's durable LSN, archived LSN). Without: a single replica trims to
    its own durable LSN; several replicas never trim, since a replica that joins later could only be
    built from the whole log.
    """
    if not durable_lsns:
        return 0
    replicas = min(durable_lsns)
    if snapshots_enabled:
        return min(replicas, archived_lsn or 0)
    return replicas if len(durable_lsns) == 1 else 0


def flush_durable_lsns(db: Database, partitions: Iterable[int]) -> dict[int, int]:
    """Flush the store and return each partition's applied LSN that the flush made durable.

    The LSNs are read before the flush, so the flushed state holds at least them. Blocks: run it in a
    thread. (In the cluster, each replica reports these; the trimmer combines them with `trim_point`.)
    """
    applied = {partition: rows.applied_lsn(db, partition) for partition in partitions}
    db.flush()
    return applied
