"""Large journal entries go through a query without being copied whole at every step: read from the
store into Arrow arrays over the bytes read, kept by a filter that keeps every row, sorted as views,
and answered a payload at a time (two 30 MiB entries once took 360 MB more RSS to answer, now ~65)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from restate_server.admin.query import columns, engine, journal, scan, tables

MiB = 1024 * 1024
LARGE = bytes(range(256)) * (2 * MiB // 256)
VALUES = [b"x" * 5, None, LARGE, b"y" * 20, b"", b"z" * 12, b"w" * 13]


@pytest.mark.parametrize("ty", [pa.binary(), pa.large_binary(), pa.binary_view()], ids=str)
def test_binary_values_and_lengths_are_read_in_place(ty: pa.DataType) -> None:
    column = pa.array(VALUES, pa.large_binary()).cast(ty)
    for part in (column, column.slice(1), column.slice(2, 3)):
        buffers = columns.binary_buffers(part)
        assert [None if b is None else b.to_pybytes() for b in buffers] == part.to_pylist()
        assert columns.binary_lengths(part).tolist() == [len(v or b"") for v in part.to_pylist()]
    [large] = [b for b in columns.binary_buffers(column) if b is not None and b.size == len(LARGE)]
    data_buffers = {b.address for b in column.buffers()[2:] if b is not None}
    assert any(buffer <= large.address < buffer + len(LARGE) + 64 for buffer in data_buffers)


def test_a_large_payload_is_a_piece_of_its_own_over_the_bytes_read() -> None:
    payloads = [b"a", LARGE, b"b", b"c", LARGE]
    pieces = list(journal._raw_pieces(payloads))
    assert [(start, stop) for start, stop, _ in pieces] == [(0, 1), (1, 2), (2, 4), (4, 5)]
    assert [v for _, _, raw in pieces for v in raw.to_pylist()] == payloads
    alone = pieces[1][2]
    assert alone.buffers()[2].address == pa.py_buffer(payloads[1]).address  # the bytes themselves


def test_a_filter_that_keeps_every_row_copies_nothing() -> None:
    schema = pa.schema([("id", tables.STR), ("raw", tables.BIN), ("n", pa.int64())])
    batch = scan.full_batch(
        schema,
        3,
        {"id": pa.array(["a", "b", "c"], tables.STR), "raw": pa.array([LARGE, b"s", LARGE], tables.BIN)},
    )
    everything = scan.Scan(columns=frozenset({"id", "raw"}), predicate=pc.field("id") >= "a")
    [kept] = scan.restrict([batch], everything)
    assert kept is batch
    some = scan.Scan(columns=frozenset({"id", "raw"}), predicate=pc.field("id") != "b")
    [fewer] = scan.restrict([batch], some)
    assert fewer.column("raw").to_pylist() == [LARGE, LARGE]
    assert fewer.schema == schema
    assert fewer.column("n").null_count == 2
    on_payload = scan.Scan(columns=frozenset({"id"}), predicate=pc.binary_length(pc.field("raw")) < 10)
    assert [b.column("id").to_pylist() for b in scan.restrict([batch], on_payload)] == [["b"]]


def test_an_answer_holds_one_payload_at_a_time_as_binary() -> None:
    raw = pa.array([b"s", LARGE, LARGE, b"t", b"u"], tables.BIN).cast(tables.BIN_VIEW)
    batch = pa.record_batch([pa.array(range(5), pa.int64()), raw], names=["index", "raw"])
    result = engine.Result(pa.schema([("index", pa.int64()), ("raw", tables.BIN)]), [batch])
    pieces = list(result.answer())
    assert [p.num_rows for p in pieces] == [1, 1, 1, 2]  # a large value alone, small ones together
    assert all(p.schema == result.schema for p in pieces)
    assert [v for p in pieces for v in p.column("raw").to_pylist()] == raw.to_pylist()
