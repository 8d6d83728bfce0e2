"""The journal tables: one row per journal entry (commands and notifications) of each invocation.

Entries are stored as raw service-protocol messages; the type label, name, promise key and sleep
wake-up time are decoded from them as upstream's journal v2 rows show them.
"""

from __future__ import annotations

from typing import Any

from restate_server.admin.query import tables
from restate_server.ids import InvocationId
from restate_server.protocol import codec, messages
from restate_server.storage import journal as journal_store, journal_events

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


def build_journal(src: tables.Sources, only: tables.Only) -> tables.Rows:
    """Every entry of the selected invocations, in journal order."""
    rows = []
    for txn, partition, invocation_id, _st in tables.statuses(src, only):
        inv = InvocationId.from_bytes(invocation_id)
        text = str(inv)
        for index, entry in enumerate(journal_store.read(txn, partition, invocation_id)):
            rows.append(
                {
                    "partition_key": inv.partition_key,
                    "id": text,
                    "index": index,
                    "entry_type": entry_type_name(entry.type),
                    "raw": entry.payload,
                    "raw_length": len(entry.payload),
                    "version": 2,
                    **_entry_details(entry.type, entry.payload),
                }
            )
    return rows


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
