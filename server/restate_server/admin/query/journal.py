"""The journal tables: one row per journal entry (commands and notifications) of each invocation.

Entries are stored as raw service-protocol messages. ``sys_journal`` is built column by column
from chunks of stored entries: ids and indexes come from the keys, the type label and lengths from
each entry's head, and the payload (which may be megabytes) is read only when ``raw`` is read, and
then not copied when it is large.
Name, promise key and sleep wake-up time need the message decoded, which happens row by row and
only when one of those columns is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from restate_server.admin.query import columns, scan as scans, tables
from restate_server.admin.query.columns import Chunk
from restate_server.ids import InvocationId
from restate_server.protocol import codec, messages
from restate_server.rocksdb import prefix_end
from restate_server.storage import journal as journal_store, journal_events, keys

JOURNAL = tables.schema_of(
    ("partition_key", tables.U64),
    ("id", tables.STR),
    ("index", tables.U32),
    ("entry_type", tables.STR),
    ("name", tables.STR),
    ("completed", tables.BOOL),
    ("invoked_id", tables.STR),
    ("invoked_target", tables.STR),
    ("sleep_wakeup_at", tables.TS),
    ("promise_name", tables.STR),
    ("raw", tables.BIN),
    ("raw_length", tables.U64),
    ("version", tables.U32),
    ("entry_json", tables.STR),
    ("entry_lite_json", tables.STR),
    ("appended_at", tables.TS),
)
JOURNAL_EVENTS = tables.schema_of(
    ("partition_key", tables.U64),
    ("id", tables.STR),
    ("after_journal_entry_index", tables.U32),
    ("appended_at", tables.TS),
    ("event_type", tables.STR),
    ("event_json", tables.STR),
)


def entry_type_name(message_type: int) -> str:
    """Upstream's journal v2 entry type label, e.g. ``Command: Sleep`` or ``Notification: Signal``."""
    try:
        member = messages.MessageType(message_type)
    except ValueError:
        return f"Unknown: 0x{message_type:04x}"
    if member is messages.MessageType.SIGNAL_NOTIFICATION:
        return "Notification: Signal"
    words = member.name.split("_")
    kind, words = ("Command", words[:-1]) if words[-1] == "COMMAND" else ("Notification", words[:-1])
    camel = "".join("Id" if w == "ID" else w.capitalize() for w in words)
    return f"{kind}: {camel}"


def _entry_details(type_: int, payload: bytes) -> dict[str, Any]:
    """Name, promise key and sleep wake-up time of a command (what the CLI shows)."""
    try:
        message = codec.decode_frame(codec.Frame(type_, 0, payload))
    except Exception:  # an undecodable entry is still listed, without details (upstream logs it)
        return {}
    row: dict[str, Any] = {}
    name = getattr(message, "name", None)
    row["name"] = name if isinstance(name, str) else ""
    if type_ == messages.MessageType.SLEEP_COMMAND:
        row["sleep_wakeup_at"] = int(getattr(message, "wake_up_time", 0))
    if type_ in (
        messages.MessageType.GET_PROMISE_COMMAND,
        messages.MessageType.PEEK_PROMISE_COMMAND,
        messages.MessageType.COMPLETE_PROMISE_COMMAND,
    ):
        row["promise_name"] = getattr(message, "key", None)
    if type_ >= 0x8000:
        row.pop("name")
    return row


_KEY_ID = 3  # table tag and partition id come first in a journal key
_KEY_INDEX = _KEY_ID + 24
_HEAD = 4  # u16 message type and u16 flags before the payload
_DETAILS = frozenset({"name", "sleep_wakeup_at", "promise_name"})


def _entry_chunks(src: tables.Sources, scan: scans.Scan) -> Iterator[tuple[list[bytes], list[bytes]]]:
    """Stored journal entries (keys, values) of the scan's invocations, in journal order."""
    if src.db is None:
        return
    if scan.ids is not None:
        prefixes = [keys.journal_prefix(p, i) for p, i in src.local_ids(scan.ids)]
    else:
        prefixes = [keys.table(keys.JOURNAL, p) for _txn, p in src.partitions(scan.partitions)]
    for prefix in prefixes:
        yield from src.db.scan_chunks(
            prefix, prefix_end(prefix), scans.BATCH_ROWS, max_bytes=scans.BATCH_BYTES
        )


def _entry_types(types: np.ndarray[Any, np.dtype[np.generic]]) -> pa.Array:
    distinct, codes = np.unique(types, return_inverse=True)
    return columns.labels(codes, [entry_type_name(int(t)) for t in distinct])


def build_journal(src: tables.Sources, scan: scans.Scan) -> Iterator[pa.RecordBatch]:
    """Every entry of the selected invocations, in journal order, a batch at a time."""
    wanted = scan.columns
    for row_keys, values in _entry_chunks(src, scan):
        n = len(values)
        key_chunk = Chunk.of(row_keys)
        raw_ids = key_chunk.data[(key_chunk.starts + _KEY_ID)[:, None] + np.arange(24)]
        heads = Chunk.of(values)  # journal rows are small: large payloads are kept apart
        first = heads.fixed(0, ">u2").astype(np.int64)
        apart = np.flatnonzero(first == journal_store.APART)
        types = first.copy()
        lengths = heads.lengths - _HEAD
        if len(apart):
            kept_apart = heads.take(apart)
            types[apart] = kept_apart.fixed(2, ">u2")
            lengths[apart] = kept_apart.fixed(6, ">u4")
        built: dict[str, pa.Array] = {
            "partition_key": pa.array(key_chunk.fixed(_KEY_ID, ">u8").astype(np.uint64), pa.uint64()),
            "id": columns.invocation_ids(raw_ids),
            "index": pa.array(key_chunk.fixed(_KEY_INDEX, ">u4").astype(np.uint32), pa.uint32()),
            "entry_type": _entry_types(types),
            "raw_length": pa.array(lengths, pa.uint64()),
            "version": pa.array(np.full(n, 2, np.uint32), pa.uint32()),
        }
        read_raw = wanted is None or "raw" in wanted
        read_details = wanted is None or bool(wanted & _DETAILS)
        payloads = _payloads(src, row_keys, values, set(apart.tolist())) if read_raw or read_details else []
        if read_details:
            built.update(_detail_columns(types, payloads))
        read = {name: array for name, array in built.items() if wanted is None or name in wanted}
        if not read_raw:
            yield scans.full_batch(JOURNAL, n, read)
            continue
        for start, stop, raw in _raw_pieces(payloads):
            piece = {name: array.slice(start, stop - start) for name, array in read.items()}
            yield scans.full_batch(JOURNAL, stop - start, piece | {"raw": raw})


def _detail_columns(
    types: np.ndarray[Any, np.dtype[np.generic]], payloads: list[bytes]
) -> dict[str, pa.Array]:
    """The columns decoded from each entry's payload."""
    decoded = [_entry_details(int(t), p) for t, p in zip(types, payloads, strict=True)]
    return {name: pa.array([d.get(name) for d in decoded], JOURNAL.field(name).type) for name in _DETAILS}


def _raw_pieces(payloads: list[bytes]) -> Iterator[tuple[int, int, pa.Array]]:
    """``raw`` of consecutive rows ``start..stop``: a large payload in a piece of its own, an array over
    its bytes as read (no copy: an entry may be tens of MiB); runs of small ones copied together."""
    start = 0
    for row, payload in enumerate(payloads):
        if len(payload) < scans.PAYLOAD_BYTES:
            continue
        if row > start:
            yield start, row, pa.array(payloads[start:row], pa.large_binary())
        offsets = pa.py_buffer(np.array([0, len(payload)], np.int64))
        yield (
            row,
            row + 1,
            pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(payload)]),
        )
        start = row + 1
    if start < len(payloads):
        yield start, len(payloads), pa.array(payloads[start:], pa.large_binary())


def _payloads(
    src: tables.Sources, row_keys: list[bytes], values: list[bytes], apart: set[int]
) -> list[bytes]:
    """Each entry's payload: inline after the head, or read from its own row (only when asked for)."""
    assert src.db is not None
    out = []
    for row, (key, value) in enumerate(zip(row_keys, values, strict=True)):
        if row in apart:
            out.append(src.db.get(journal_store.apart_key(key)) or b"")
        else:
            out.append(value[_HEAD:])
    return out


def build_events(src: tables.Sources, only: tables.Only) -> tables.Rows:
    """The transient errors and pauses of the selected invocations, in the order they happened."""
    rows = []
    for txn, partition, invocation_id, _st in tables.statuses(src, only):
        inv = InvocationId.from_bytes(invocation_id)
        text = str(inv)
        for stored in journal_events.read(txn, partition, invocation_id):
            rows.append(
                {
                    "partition_key": inv.partition_key,
                    "id": text,
                    "after_journal_entry_index": stored.after_journal_entry_index,
                    "appended_at": stored.appended_at,
                    "event_type": stored.event.ty,
                    "event_json": stored.event.json,
                }
            )
    return rows
