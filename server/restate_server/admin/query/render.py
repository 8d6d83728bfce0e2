"""Query answers on the wire: Arrow IPC stream bytes, or ``{"rows": [...]}`` JSON.

The JSON form follows what upstream's Arrow JSON writer prints, because the CLI and the UI parse
it: null columns are left out of a row, timestamps are RFC 3339 (``…Z`` when the column carries a
time zone, none otherwise; as many fraction digits as needed: 0, 3, 6 or 9), durations are ISO 8601
seconds (``PT86400S``, ``PT1.5S``), binaries are lowercase hex, lists are arrays.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa

from restate_server.admin.query.engine import Result

_EPOCH = dt.datetime(1970, 1, 1)
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def arrow_stream(result: Result) -> bytes:
    """The Arrow IPC stream (schema, batches, end marker) the CLI decodes."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, result.schema) as writer:
        for batch in result.batches:
            writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def json_rows(result: Result) -> Iterator[bytes]:
    """``{"rows":[…]}`` in chunks, one per batch."""
    converters = [_converter(field.type) for field in result.schema]
    names = result.schema.names
    yield b'{"rows":['
    first = True
    for batch in result.batches:
        columns = [_pylist(batch.column(i)) for i in range(batch.num_columns)]
        parts = []
        for r in range(batch.num_rows):
            row = {}
            for name, column, convert in zip(names, columns, converters, strict=True):
                value = column[r]
                if value is not None:
                    row[name] = convert(value)
            parts.append(json.dumps(row, separators=(",", ":"), ensure_ascii=False))
        if parts:
            yield (b"" if first else b",") + ",".join(parts).encode()
            first = False
    yield b"]}"


Converter = Callable[[Any], Any]


def _pylist(array: pa.Array) -> list[Any]:
    """Python values of a column; temporal columns as raw integer ticks (nanoseconds fit no datetime)."""
    if pa.types.is_timestamp(array.type) or pa.types.is_duration(array.type):
        return list(array.cast(pa.int64()).to_pylist())
    return list(array.to_pylist())


def _converter(ty: pa.DataType) -> Converter:
    """How one column's Python values become JSON values."""
    if pa.types.is_timestamp(ty):
        return _timestamp_converter(ty)
    if pa.types.is_duration(ty):
        unit = _PER_SECOND[ty.unit]
        return lambda v: _duration(_raw_int(v, unit), unit)
    if pa.types.is_binary(ty) or pa.types.is_large_binary(ty) or pa.types.is_fixed_size_binary(ty):
        return lambda v: bytes(v).hex()
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
