"""Scanning a table of the partition store in steps, without holding the event loop.

A table can hold millions of rows (retained invocations, sleeping timers). The leadership and the
retention cleaner read such tables in chunks of committed rows, yielding to the event loop between
two chunks, so that the ingress is never kept waiting for more than one chunk (about 2 ms).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from restate_server.rocksdb import Database, prefix_end

CHUNK = 250  # rows per step: decoding 250 status rows takes about 2 ms


async def chunks(db: Database, prefix: bytes, size: int = CHUNK) -> AsyncIterator[list[tuple[bytes, bytes]]]:
    """The committed rows whose key starts with ``prefix``, in key order, ``size`` at a time."""
    end = prefix_end(prefix)
    start: bytes | None = prefix
    while start is not None:
        rows: list[tuple[bytes, bytes]] = []
        resume_at = None
        for key, value in db.scan(start, end):
            if len(rows) == size:
                resume_at = key
                break
            rows.append((key, value))
        if rows:
            yield rows
        start = resume_at
        if start is not None:
            await asyncio.sleep(0)  # let the ingress in between two steps
