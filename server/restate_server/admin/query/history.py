"""``sys_state_history``: the state history of virtual objects and workflows, one row per operation.

The same rows the Replay API streams (`storage.state_history`), flattened: an event that set two
keys is two rows sharing ``txn_id`` and ``commit_ts``; ``value`` is null for a cleared key.
"""

from __future__ import annotations

from restate_server.admin.query import tables
from restate_server.ids import partition_key_for
from restate_server.storage import state_history

STATE_HISTORY = tables.schema_of(
    ("partition_key", tables.U64),
    ("service_name", tables.STR),
    ("service_key", tables.STR),
    ("txn_id", tables.STR),
    ("commit_ts", tables.TS),
    ("log_position", tables.U64),
    ("key", tables.STR),
    ("version", tables.U64),
    ("value_utf8", tables.STR),
    ("value", tables.BIN),
)


def _utf8(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


def build_state_history(src: tables.Sources, _only: tables.Only) -> tables.Rows:
    """Every operation of every retained event, in commit order per object."""
    if src.db is None:
        return []
    rows = []
    for _txn, partition in src.partitions():  # in a cluster: the partitions led here
        for service, key, event in state_history.scan_all(src.db, partition):
            partition_key = partition_key_for(key)
            for operation in event.operations:
                rows.append(
                    {
                        "partition_key": partition_key,
                        "service_name": service,
                        "service_key": key,
                        "txn_id": event.txn_id,
                        "commit_ts": event.commit_ts,
                        "log_position": event.lsn,
                        "key": operation.key.decode(errors="replace"),
                        "version": operation.version,
                        "value_utf8": _utf8(operation.value),
                        "value": operation.value,
                    }
                )
    return rows
