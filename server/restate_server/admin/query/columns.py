"""Whole Arrow columns cut out of many stored rows at once, with numpy, instead of row by row.

A chunk of rows read from the store (:class:`Chunk`: their bytes one after the other, and where
each starts) is turned into columns by gathering bytes at per-row offsets: fixed-width fields
become numeric arrays without a copy per row, variable-length fields become Arrow string or binary
arrays whose buffers are built in one go. The cost is a few numpy operations per column, whatever
the number of rows; nothing here makes a Python object per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

_ALPHABET = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", np.uint8)
_B62_5 = 62**5  # five base-62 digits per long division: the remainder fits a u32 limb's carry
_INV_PREFIX = np.frombuffer(b"inv_1", np.uint8)
INVOCATION_ID_TEXT_LEN = 38  # "inv_1" + 11 digits of the partition key + 22 of the uuid


@dataclass(frozen=True, slots=True)
class Chunk:
    """Stored rows (keys or values) as one byte buffer and the offset where each row starts."""

    data: npt.NDArray[np.uint8]
    starts: Ints
    lengths: Ints

    @classmethod
    def of(cls, rows: list[bytes]) -> Chunk:
        lengths = np.fromiter(map(len, rows), np.int64, len(rows))
        starts = np.zeros(len(rows), np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        return cls(np.frombuffer(b"".join(rows), np.uint8), starts, lengths)

    def __len__(self) -> int:
        return len(self.starts)

    def take(self, rows: Ints) -> Chunk:
        """The chunk restricted to the given row positions (the bytes stay shared)."""
        return Chunk(self.data, self.starts[rows], self.lengths[rows])

    def fixed(self, offset: int | Ints, dtype: npt.DTypeLike) -> npt.NDArray[np.generic]:
        """A fixed-width field at ``offset`` from each row's start (a scalar or one per row)."""
        ty = np.dtype(dtype)
        at = self.starts + offset
        picked = self.data[at[:, None] + np.arange(ty.itemsize)]
        values: npt.NDArray[np.generic] = picked.reshape(-1).view(ty)
        return values

    def u8(self, offset: int) -> npt.NDArray[np.uint8]:
        return self.data[self.starts + offset]

    def slices(self, begin: Ints, end: Ints) -> tuple[Ints, npt.NDArray[np.uint8]]:
        """Per row, the bytes ``begin..end`` (relative to the row): Arrow offsets and data."""
        lengths = end - begin
        offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        total = int(offsets[-1])
        if total == 0:
            return offsets, np.zeros(0, np.uint8)
        # index of every output byte in self.data: its row's first byte plus its place in the row
        shift = np.repeat(self.starts + begin - offsets[:-1], lengths)
        return offsets, self.data[shift + np.arange(total)]

    def strings(self, begin: Ints, end: Ints, valid: Mask | None = None) -> pa.Array:
        return _array(pa.large_utf8(), *self.slices(begin, end), valid)

    def binaries(self, begin: Ints, end: Ints, valid: Mask | None = None) -> pa.Array:
        return _array(pa.large_binary(), *self.slices(begin, end), valid)


def _array(ty: pa.DataType, offsets: Ints, data: npt.NDArray[np.uint8], valid: Mask | None) -> pa.Array:
    n = len(offsets) - 1
    validity, nulls = _validity(valid, n)
    return pa.Array.from_buffers(ty, n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)], nulls)


def _validity(valid: Mask | None, n: int) -> tuple[pa.Buffer | None, int]:
    if valid is None or bool(valid.all()):
        return None, 0
    bits = np.packbits(valid, bitorder="little")
    return pa.py_buffer(bits), int(n - np.count_nonzero(valid))


def numbers(values: npt.NDArray[np.generic], ty: pa.DataType, valid: Mask | None = None) -> pa.Array:
    """An Arrow array of ``ty`` over numeric values (timestamps and durations take int64 ticks)."""
    mask = None if valid is None else ~valid
    if pa.types.is_timestamp(ty) or pa.types.is_duration(ty):
        return pa.array(values.astype(np.int64, copy=False), pa.int64(), mask=mask).cast(ty)
    return pa.array(values, ty, mask=mask)


def labels(codes: npt.NDArray[np.integer], names: list[str | None]) -> pa.Array:
    """Strings looked up from small integer codes (a None name is a null)."""
    table = pa.array(names, pa.large_utf8())
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32, copy=False)), table).cast(
        pa.large_utf8()
    )


def binary_lengths(column: pa.Array) -> Ints:
    """The byte length of each value of a binary column, views included (Arrow has no kernel for
    those: a view's first four bytes are its length); 0 for a null."""
    if not pa.types.is_binary_view(column.type):
        counted: Ints = np.nan_to_num(pc.binary_length(column).to_numpy(zero_copy_only=False)).astype(
            np.int64
        )
        return counted
    views = np.frombuffer(column.buffers()[1], np.int32).reshape(-1, 4)
    lengths = views[column.offset : column.offset + len(column), 0].astype(np.int64)
    if column.null_count:
        lengths[~np.asarray(column.is_valid().to_numpy(zero_copy_only=False), np.bool_)] = 0
    return lengths


def binary_buffers(column: pa.Array) -> list[pa.Buffer | None]:
    """Each value of a binary or binary view column as a slice of the column's memory (a scalar's
    ``as_buffer`` copies: 60 MiB for two 30 MiB journal entries); None for a null."""
    rows = range(column.offset, column.offset + len(column))
    valid = column.is_valid().to_pylist() if column.null_count else [True] * len(column)
    buffers = column.buffers()
    if pa.types.is_binary_view(column.type):
        views = np.frombuffer(buffers[1], np.int32).reshape(-1, 4)[rows.start : rows.stop].tolist()
        return [
            None
            if not ok
            else buffers[1].slice(16 * row + 4, length)
            if length <= _INLINE_VIEW
            else buffers[2 + index].slice(at, length)
            for row, ok, (length, _prefix, index, at) in zip(rows, valid, views, strict=True)
        ]
    width = np.int64 if pa.types.is_large_binary(column.type) else np.int32
    offsets = np.frombuffer(buffers[1], width)[rows.start : rows.stop + 1].tolist()
    return [
        buffers[2].slice(begin, end - begin) if ok else None
        for ok, begin, end in zip(valid, offsets, offsets[1:], strict=False)
    ]


_INLINE_VIEW = 12  # a binary view keeps values this short in the view itself


def invocation_ids(raw: npt.NDArray[np.uint8]) -> pa.Array:
    """``inv_1…`` strings of raw 24-byte invocation ids (an ``n`` by 24 byte matrix).

    Upstream's text form: base62 of each part's big-endian bytes read as a little-endian integer,
    zero-padded to 11 (partition key) and 22 (uuid) digits.
    """
    n = raw.shape[0]
    out = np.empty((n, INVOCATION_ID_TEXT_LEN), np.uint8)
    out[:, :5] = _INV_PREFIX
    key = np.ascontiguousarray(raw[:, :8]).view("<u8").reshape(n)
    out[:, 5:16] = _ALPHABET[_digits_u64(key, 11)]
    limbs = [np.ascontiguousarray(raw[:, 8 + 4 * i : 12 + 4 * i]).view("<u4").reshape(n) for i in range(4)]
    out[:, 16:] = _ALPHABET[_digits_u128(limbs[::-1], 22)]  # most significant limb first
    offsets = np.arange(0, (n + 1) * INVOCATION_ID_TEXT_LEN, INVOCATION_ID_TEXT_LEN, dtype=np.int64)
    return _array(pa.large_utf8(), offsets, out.reshape(-1), None)


def _digits_u64(values: npt.NDArray[np.uint64], width: int) -> npt.NDArray[np.uint8]:
    digits = np.empty((width, len(values)), np.uint8)
    rest = values
    base = np.uint64(62)
    for row in range(width - 1, -1, -1):
        quotient = rest // base
        digits[row] = rest - quotient * base
        rest = quotient
    return digits.T


def _digits_u128(limbs: list[npt.NDArray[np.uint32]], width: int) -> npt.NDArray[np.uint8]:
    """Base-62 digits of 128-bit values given as four u32 limbs, most significant first."""
    n = len(limbs[0])
    parts = [limb.astype(np.uint64) for limb in limbs]
    digits = np.empty((width, n), np.uint8)
    divisor, base, shift = np.uint64(_B62_5), np.uint64(62), np.uint64(32)
    row = width
    while row > 0:
        # long division of the 128-bit value by 62**5, limb by limb; the remainder is 5 digits
        carry = np.zeros(n, np.uint64)
        for i, limb in enumerate(parts):
            current = (carry << shift) | limb
            parts[i] = current // divisor
            carry = current - parts[i] * divisor
        for _ in range(min(5, row)):
            quotient = carry // base
            row -= 1
            digits[row] = carry - quotient * base
            carry = quotient
    return digits.T
