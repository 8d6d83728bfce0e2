"""Query answers as upstream writes them (its JSON is arrow-rs's writer), and large ones a piece at a
time: a 30 MiB journal entry read with ``raw`` is not copied whole at every step of rendering (two of
them once took 850 MB of RSS to answer)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
from datafusion import SessionContext
from restate_server.admin.query import engine, render, tables

MiB = 1024 * 1024
LARGE = bytes(range(256)) * (5 * MiB // 256)


def _arrow_json(table: pa.Table, tmp_path: Path) -> list[dict[str, object]]:
    """What DataFusion's own (arrow-rs) JSON writer, which upstream uses, makes of ``table``."""
    ctx = SessionContext()
    ctx.register_record_batches("t", [table.to_batches()])
    out = tmp_path / "out.json"
    ctx.sql("SELECT * FROM t").write_json(str(out))
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_json_rendering_matches_arrow_json_writer(tmp_path: Path) -> None:
    data = pa.table(
        {
            "ts": pa.array([1_763_764_465_777, 1_763_764_465_000, None], tables.TS),
            "naive": pa.array([1_500, 0, None], pa.timestamp("ns")),
            "d": pa.array([86_400_000, 1_500, None], tables.DURATION),
            "b": pa.array([b"ab", None, b"\x00"], tables.BIN),
            "l": pa.array([[1, 2], None, []], pa.list_(tables.U32)),
            "u": pa.array([1, 2, None], tables.U64),
            "s": pa.array(["x", None, "é"], tables.STR),
        }
    )
    ours = json.loads(b"".join(render.json_rows(engine.Result(data.schema, data.to_batches()))))["rows"]
    assert ours == _arrow_json(data, tmp_path)


def test_a_large_binary_value_is_written_as_hex_in_pieces(tmp_path: Path) -> None:
    data = pa.table(
        {
            "index": pa.array([0, 1, 2], tables.U32),
            "raw": pa.array([b"\x00\x01", LARGE, None], tables.BIN),
            "s": pa.array(["before", "é", None], tables.STR),
        }
    )
    pieces = list(render.json_rows(engine.Result(data.schema, data.to_batches())))
    assert json.loads(b"".join(pieces))["rows"] == _arrow_json(data, tmp_path)
    assert max(len(piece) for piece in pieces) <= 2 * render.HEX_PIECE + 1024


def test_rows_after_a_large_one_keep_their_order_and_separators(tmp_path: Path) -> None:
    data = pa.table(
        {
            "raw": pa.array([LARGE, b"\xff", LARGE, b""], tables.BIN),
            "l": pa.array([[1, 2], None, [3], []], pa.list_(tables.U32)),
        }
    )
    batches = data.to_batches(max_chunksize=1)
    answer = b"".join(render.json_rows(engine.Result(data.schema, batches)))
    assert json.loads(answer)["rows"] == _arrow_json(data, tmp_path)
    assert b'"l":[1,2]' in answer  # as compact as the rows without a large value


def test_the_arrow_stream_hands_large_values_over_in_slices_of_their_own_memory() -> None:
    data = pa.table({"raw": pa.array([LARGE, b"small", LARGE], tables.BIN)})
    batches = data.to_batches(max_chunksize=1)
    pieces = list(render.arrow_stream(engine.Result(data.schema, batches)))
    assert max(len(piece) for piece in pieces) <= render.HEX_PIECE
    assert pa.ipc.open_stream(b"".join(pieces)).read_all().equals(data)
    values = {batch.column("raw").buffers()[2].address for batch in (batches[0], batches[2])}
    sliced = {pa.py_buffer(piece).address for piece in pieces if isinstance(piece, memoryview)}
    assert values <= sliced  # each large value's first slice starts at the value itself: no copy
