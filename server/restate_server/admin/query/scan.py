"""What one query reads of one table: the seam between planning and the partition store.

A :class:`Scan` says "rows of this table, in these partitions, only these columns, only rows that
can pass this restriction, at most this many"; a table answers it with Arrow record batches. The
planner fills it from DataFusion's optimised plan (``pushdown``); a node that does not hold a
partition can answer the same request remotely, so nothing else about the query crosses the seam.
Every restriction is safe to ignore: DataFusion still applies the query's own filters and limits
to what comes back, so a table that reads more than asked is only slower, never wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

BATCH_ROWS = 8192
"""Rows per record batch read from the store; bounds the memory of one step of a scan."""
BATCH_BYTES = 16 * 1024 * 1024
"""Stored bytes per batch at most, for tables whose rows can be large (journal entries)."""
PAYLOAD_BYTES = 1024 * 1024
"""A binary value (or a batch's binary column) this large is a payload: tables hand it to the engine
without copying it, and a filter copies it only when it drops some of its rows."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scan:
    """Which rows and columns of one table a query can read."""

    columns: frozenset[str] | None = None
    """Columns read; the others may come back as nulls. None: all of them."""
    ids: frozenset[bytes] | None = None
    """Raw invocation ids, for tables keyed by invocation: only their rows. None: all."""
    partitions: frozenset[int] | None = None
    """Partition ids to read. None: every partition of this node."""
    predicate: pc.Expression | None = None
    """Rows for which this is not true may be left out (implied by the query's own filter)."""
    limit: int | None = None
    """Rows at most (after the predicate): the query reads no more of this table."""
    service: str | None = None
    """For tables keyed by (service, key): only this service's rows (a key range)."""
    service_key: str | None = None
    """With ``service``: only this object's rows (one partition, one key range)."""
    unfinished: bool = False
    """For invocation status rows: only invocations not completed (the query keeps no completed one)."""


EVERYTHING = Scan()


def full_batch(schema: pa.Schema, n: int, built: Mapping[str, pa.Array]) -> pa.RecordBatch:
    """A batch of ``schema`` with the columns ``built``; every other column is all null, and those of
    one type share one array (an array per unread column would cost as much as reading it)."""
    nulls: dict[pa.DataType, pa.Array] = {}
    arrays = []
    for field in schema:
        array = built.get(field.name)
        if array is None:
            array = nulls.get(field.type)
            if array is None:
                array = nulls[field.type] = pa.nulls(n, field.type)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def restrict(batches: Iterable[pa.RecordBatch], scan: Scan) -> Iterator[pa.RecordBatch]:
    """Apply the scan's predicate and limit to batches a table produced."""
    left = scan.limit
    for batch in batches:
        if scan.predicate is not None:
            batch = _filtered(batch, scan.predicate, scan.columns)
        if left is not None:
            batch = batch.slice(0, left)
            left -= batch.num_rows
        if batch.num_rows:
            yield batch
        if left is not None and left <= 0:
            return


def _filtered(
    batch: pa.RecordBatch, predicate: pc.Expression, columns: frozenset[str] | None
) -> pa.RecordBatch:
    """The rows ``predicate`` keeps. Only the columns read are copied (the shared null columns stay
    shared), and payloads only when some row is left out: a point read's journal entries may be
    tens of MiB, and every one of them is kept."""
    read = [name for name in batch.schema.names if columns is None or name in columns]
    payloads = {name for name in read if _is_payload(batch.column(name))}
    if payloads:
        rows = kept_rows(batch, predicate, [name for name in read if name not in payloads])
        if rows is None:  # the predicate reads a payload or an unread column
            return batch.filter(predicate)
        if len(rows) == batch.num_rows:
            return batch
        kept = batch.select(read).take(rows)
    else:
        try:
            kept = batch.select(read).filter(predicate)
        except (pa.ArrowInvalid, KeyError):  # the predicate names a column outside the projection
            return batch.filter(predicate)
    return full_batch(batch.schema, kept.num_rows, {name: kept.column(name) for name in read})


_ROW = "__row"


def _is_payload(column: pa.Array) -> bool:
    return bool(pa.types.is_large_binary(column.type)) and column.nbytes >= PAYLOAD_BYTES


def kept_rows(batch: pa.RecordBatch, predicate: pc.Expression, judged: list[str]) -> pa.Array | None:
    """Positions of the rows ``predicate`` keeps, judged on the ``judged`` columns alone; None when it
    names another."""
    positions = pa.array(range(batch.num_rows), pa.int64())
    try:
        return batch.select(judged).append_column(_ROW, positions).filter(predicate).column(_ROW)
    except (pa.ArrowInvalid, KeyError):
        return None
