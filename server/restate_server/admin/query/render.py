"""Query answers on the wire: Arrow IPC stream bytes, or ``{"rows": [...]}`` JSON.

The JSON form follows what upstream's Arrow JSON writer prints, because the CLI and the UI parse
it: null columns are left out of a row, timestamps are RFC 3339 (``…Z`` when the column carries a
time zone, none otherwise; as many fraction digits as needed: 0, 3, 6 or 9), durations are ISO 8601
seconds (``PT86400S``, ``PT1.5S``), binaries are lowercase hex, lists are arrays.
"""

from __future__ import annotations

import binascii
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

from restate_server.admin.query.columns import binary_buffers, binary_lengths
from restate_server.admin.query.engine import Result

_EPOCH = dt.datetime(1970, 1, 1)
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


LARGE_BINARY = 1024 * 1024
"""A binary value this large is written out in hex pieces, never whole: a journal entry of 30 MiB
would otherwise be copied as bytes, as a 60 MiB hex string, as its JSON and as the row's bytes."""
HEX_PIECE = 1024 * 1024
"""Bytes of a large binary value hex-encoded per piece of the answer."""


def arrow_stream(result: Result) -> Iterator[bytes | memoryview]:
    """The Arrow IPC stream (schema, batches, end marker) the CLI decodes, a piece per batch."""
    pieces: list[bytes | pa.Buffer] = []
    with pa.ipc.new_stream(pa.PythonFile(_Collector(pieces), mode="w"), result.schema) as writer:
        for batch in result.answer():
            writer.write_batch(batch)
            yield from _taken(pieces)
    yield from _taken(pieces)


def _taken(pieces: list[bytes | pa.Buffer]) -> Iterator[bytes | memoryview]:
    """What the writer wrote since last taken: small pieces joined, a large one (a column's buffer)
    in ``HEX_PIECE`` slices of it."""
    small: list[bytes | pa.Buffer] = []
    for piece in pieces:
        if len(piece) < HEX_PIECE:
            small.append(piece)
            continue
        if small:
            yield b"".join(small)
            small = []
        whole = memoryview(piece)
        for start in range(0, len(whole), HEX_PIECE):
            yield whole[start : start + HEX_PIECE]
    pieces.clear()
    if small:
        yield b"".join(small)


class _Collector:
    """A write-only file for Arrow's IPC writer that keeps what it is given until it is taken.

    The writer hands over a batch's body buffers as Arrow buffers of the batch's own memory: they
    are kept as they are (a payload is not copied); anything else is copied, as it may be reused."""

    def __init__(self, pieces: list[bytes | pa.Buffer]) -> None:
        self.pieces = pieces
        self.closed = False

    def write(self, data: bytes | pa.Buffer) -> int:
        self.pieces.append(data if isinstance(data, pa.Buffer) else bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def json_rows(result: Result) -> Iterator[bytes]:
    """``{"rows":[…]}`` in pieces: one per batch, and a row holding a large binary value in several."""
    converters = [_converter(field.type) for field in result.schema]
    names = result.schema.names
    yield b'{"rows":['
    separator = b""
    for batch in result.batches:  # binary values are hex either way: no need to cast views
        large_by_column = [_large_rows(column) for column in batch.columns]
        columns = [
            _pylist(column, as_buffers=bool(rows))
            for column, rows in zip(batch.columns, large_by_column, strict=True)
        ]
        large = set[int]().union(*large_by_column)
        parts: list[str] = []
        for r in range(batch.num_rows):
            if r in large:
                if parts:
                    yield separator + ",".join(parts).encode()
                    separator, parts = b",", []
                yield from _streamed_row(separator, names, [column[r] for column in columns], converters)
                separator = b","
                continue
            row = {}
            for name, column, convert in zip(names, columns, converters, strict=True):
                value = column[r]
                if value is not None:
                    row[name] = convert(value)
            parts.append(json.dumps(row, separators=(",", ":"), ensure_ascii=False))
        if parts:
            yield separator + ",".join(parts).encode()
            separator = b","
    yield b"]}"


def _large_rows(column: pa.Array) -> set[int]:
    """Rows of ``column`` holding a binary value of ``LARGE_BINARY`` bytes or more (of variable length:
    no table has fixed-size values that large)."""
    variable = _is_binary(column.type) and not pa.types.is_fixed_size_binary(column.type)
    if not variable or column.null_count == len(column):
        return set()
    return set(np.flatnonzero(binary_lengths(column) >= LARGE_BINARY).tolist())


def _large(value: Any) -> bool:
    return isinstance(value, pa.Buffer) and value.size >= LARGE_BINARY


def _streamed_row(
    separator: bytes, names: Sequence[str], values: Sequence[Any], converters: Sequence[Converter]
) -> Iterator[bytes]:
    """One row as JSON, its large binary values hex-encoded a piece at a time."""
    opening = separator + b"{"
    for name, value, convert in zip(names, values, converters, strict=True):
        if value is None:
            continue
        key = json.dumps(name, ensure_ascii=False).encode()
        if _large(value):
            yield opening + key + b':"'
            view = memoryview(value)
            for start in range(0, len(view), HEX_PIECE):
                yield binascii.hexlify(view[start : start + HEX_PIECE])
            yield b'"'
        else:
            value_json = json.dumps(convert(value), separators=(",", ":"), ensure_ascii=False)
            yield opening + key + b":" + value_json.encode()
        opening = b","
    yield b"}"


Converter = Callable[[Any], Any]


def _pylist(array: pa.Array, *, as_buffers: bool = False) -> list[Any]:
    """Python values of a column; temporal columns as raw integer ticks (nanoseconds fit no datetime);
    binary ones ``as_buffers`` to hex-encode large values straight from Arrow's memory."""
    if pa.types.is_timestamp(array.type) or pa.types.is_duration(array.type):
        return list(array.cast(pa.int64()).to_pylist())
    if as_buffers:
        return list(binary_buffers(array))
    return list(array.to_pylist())


def _is_binary(ty: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(ty)
        or pa.types.is_large_binary(ty)
        or pa.types.is_binary_view(ty)
        or pa.types.is_fixed_size_binary(ty)
    )


def _converter(ty: pa.DataType) -> Converter:
    """How one column's Python values become JSON values."""
    if pa.types.is_timestamp(ty):
        return _timestamp_converter(ty)
    if pa.types.is_duration(ty):
        unit = _PER_SECOND[ty.unit]
        return lambda v: _duration(_raw_int(v, unit), unit)
    if _is_binary(ty):
        return lambda v: memoryview(v).hex()  # a pa.Buffer at the top level, bytes inside lists
    if pa.types.is_list(ty) or pa.types.is_large_list(ty) or pa.types.is_fixed_size_list(ty):
        inner = _converter(ty.value_type)
        return lambda v: [None if x is None else inner(x) for x in v]
    if pa.types.is_struct(ty):
        fields = {f.name: _converter(f.type) for f in ty}
        return lambda v: {k: fields[k](x) for k, x in v.items() if x is not None}
    if pa.types.is_date(ty) or pa.types.is_time(ty):
        return lambda v: v.isoformat()
    if pa.types.is_decimal(ty):
        return lambda v: str(v) if isinstance(v, Decimal) else v
    if pa.types.is_floating(ty):
        return _float
    return lambda v: v


def _timestamp_converter(ty: pa.TimestampType) -> Converter:
    unit = _PER_SECOND[ty.unit]
    suffix = "Z" if ty.tz is not None else ""

    def convert(v: Any) -> str:
        raw = _raw_int(v, unit)
        seconds, fraction = divmod(raw, unit)
        stamp = (_EPOCH + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
        return stamp + _fraction(fraction * (1_000_000_000 // unit)) + suffix

    return convert


def _raw_int(v: Any, unit: int) -> int:
    """The integer count of ``unit`` ticks behind a pyarrow scalar's Python value."""
    if isinstance(v, int):
        return v
    if isinstance(v, dt.timedelta):
        return (v.days * 86_400 + v.seconds) * unit + v.microseconds * unit // 1_000_000
    if isinstance(v, dt.datetime):
        aware = v if v.tzinfo is not None else v.replace(tzinfo=dt.UTC)
        delta = aware - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return _raw_int(delta, unit)
    nanos = getattr(v, "value", None)  # pandas Timestamp/Timedelta for nanosecond columns
    if isinstance(nanos, int):
        return nanos * unit // 1_000_000_000
    raise TypeError(f"not a time value: {v!r}")


def _fraction(nanos: int) -> str:
    """Chrono's ``%.f``: nothing, or 3, 6 or 9 digits, whichever is the shortest exact one."""
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06d}"
    return f".{nanos:09d}"


def _duration(raw: int, unit: int) -> str:
    sign = "-" if raw < 0 else ""
    seconds, rest = divmod(abs(raw), unit)
    text = str(seconds)
    if rest:
        digits = len(str(unit)) - 1
        text += "." + f"{rest:0{digits}d}".rstrip("0")
    return f"{sign}PT{text}S"


def _float(v: float) -> Any:
    if v != v or v in (float("inf"), float("-inf")):
        return None  # JSON has no NaN/inf; arrow writes null
    return v
