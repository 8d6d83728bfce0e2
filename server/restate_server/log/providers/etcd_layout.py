"""What the etcd log's keys hold, decoded and encoded without I/O (the layout is in ``etcd``'s
docstring): fences, packed append batches, trim points, and the batches a watch response carries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack

from restate_server import etcd
from restate_server.log.api import LogEntry, entries
from restate_server.log.records import Record, decode


def fence(epoch: int, sealed: bool) -> bytes:
    packed: bytes = msgpack.packb([epoch, sealed])
    return packed


def unfence(kvs: Sequence[Any]) -> tuple[int, bool]:
    if not kvs:
        return 0, False
    epoch, sealed = msgpack.unpackb(kvs[0].value)
    return int(epoch), bool(sealed)


def batch_records(value: bytes) -> tuple[int, list[Record]]:
    epoch, payloads = msgpack.unpackb(value, raw=False)
    return int(epoch), [decode(p) for p in payloads]


class Behind(Exception):
    """The watch skipped a batch (cannot happen with a healthy etcd): read again from the next LSN."""


def watched(
    events: Sequence[Any], start: bytes, fence_key: bytes, nxt: int
) -> tuple[list[list[LogEntry]], bool]:
    """The batches from LSN ``nxt`` on in one watch response, and whether the log was sealed in it.

    Raises :class:`Behind` when a batch starts past ``nxt`` (the watch missed one: read again)."""
    batches: list[list[LogEntry]] = []
    sealed = False
    for event in events:
        key = event.kv.key
        if key == fence_key and unfence([event.kv])[1]:
            sealed = True  # every batch before the seal has a lower revision
        if event.type != etcd.EVENT_PUT or not key.startswith(start):
            continue
        first = int(key[-20:])
        if first > nxt:
            raise Behind
        batch = entries(first, batch_records(event.kv.value)[1])[nxt - first :]
        if batch:
            nxt = batch[-1][0] + 1
            batches.append(batch)
    return batches, sealed


def trim_point(kvs: Sequence[Any]) -> int:
    return int(kvs[0].value) if kvs else 0


def next_lsn(last: Sequence[Any], trim: Sequence[Any]) -> int:
    """The LSN after the last batch (``last``: the highest batch key, if any), at least trim + 1."""
    end = 1
    if last:
        first = int(last[0].key[-20:])
        end = first + len(batch_records(last[0].value)[1])
    return max(end, trim_point(trim) + 1)
