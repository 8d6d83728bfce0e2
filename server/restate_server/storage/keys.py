"""Key layout of the partition store: every table's keys are built here and nowhere else.

All keys start with a one-byte table tag and the partition id (u16 BE), so one partition's rows of
one table are a contiguous range. Variable-length parts are length-prefixed so that prefixes never
collide ("ab"+"c" vs "a"+"bc").
"""

from __future__ import annotations

import struct

STATUS = b"S"
JOURNAL = b"J"
STATE = b"T"
LOCK = b"K"
INBOX = b"I"
TIMER = b"M"
OUTBOX = b"O"
FSM = b"F"
PROMISE = b"P"
INBOX_HEAD = b"H"
JOURNAL_EVENTS = b"E"
INVOKED = b"N"  # index of the invocations in status invoked: what a new leader resumes
UNFINISHED = b"Q"  # index of the invocations not completed: what `restate invocations list` reads
RESULT = b"U"  # large results of completed invocations, kept out of their status rows
JOURNAL_PAYLOAD = b"X"  # payloads of large journal entries, kept out of the journal rows
HISTORY = b"Y"  # state history events by (service, key, commit ts, lsn): what a replay reads
HISTORY_AGE = b"A"  # the same events by (service, commit ts, lsn, key): what retention trims first
STATE_VERSION = b"V"  # per state key: how many changes the history has counted
HISTORY_TRIMMED = b"W"  # per object key: the newest commit ts that retention removed
HISTORY_RETENTION = b"R"  # per service: the history retention the partition applies (ms)

_PART = struct.Struct(">cH")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_TIMER = struct.Struct(">QB")
_POSITION = struct.Struct(">QQ")  # (commit ts, lsn)


def table(tag: bytes, partition: int) -> bytes:
    return _PART.pack(tag, partition)


def _lp(value: str) -> bytes:
    raw = value.encode()
    return _U32.pack(len(raw)) + raw


def service_key(service: str, key: str) -> bytes:
    """The (service, object key) part shared by state, locks, inbox and promises."""
    return _lp(service) + _lp(key)


def service_prefix(service: str) -> bytes:
    """The start of every (service, key) part of one service: its rows are one key range."""
    return _lp(service)


def split_service_key(data: bytes) -> tuple[str, str, bytes]:
    """Inverse of service_key; returns (service, key, rest)."""
    n = _U32.unpack_from(data, 0)[0]
    service = data[4 : 4 + n].decode()
    off = 4 + n
    m = _U32.unpack_from(data, off)[0]
    key = data[off + 4 : off + 4 + m].decode()
    return service, key, data[off + 4 + m :]


def status(partition: int, invocation_id: bytes) -> bytes:
    return table(STATUS, partition) + invocation_id


def invoked(partition: int, invocation_id: bytes) -> bytes:
    return table(INVOKED, partition) + invocation_id


def unfinished(partition: int, invocation_id: bytes) -> bytes:
    return table(UNFINISHED, partition) + invocation_id


def result(partition: int, invocation_id: bytes) -> bytes:
    return table(RESULT, partition) + invocation_id


def journal_prefix(partition: int, invocation_id: bytes) -> bytes:
    return table(JOURNAL, partition) + invocation_id


def journal(partition: int, invocation_id: bytes, index: int) -> bytes:
    return journal_prefix(partition, invocation_id) + _U32.pack(index)


def journal_payload(partition: int, invocation_id: bytes, index: int) -> bytes:
    return table(JOURNAL_PAYLOAD, partition) + invocation_id + _U32.pack(index)


def journal_events_prefix(partition: int, invocation_id: bytes) -> bytes:
    return table(JOURNAL_EVENTS, partition) + invocation_id


def journal_event(partition: int, invocation_id: bytes, seq: int) -> bytes:
    return journal_events_prefix(partition, invocation_id) + _U64.pack(seq)


def state_prefix(partition: int, service: str, key: str) -> bytes:
    return table(STATE, partition) + service_key(service, key)


def state(partition: int, service: str, key: str, state_key: bytes) -> bytes:
    return state_prefix(partition, service, key) + state_key


def lock(partition: int, service: str, key: str) -> bytes:
    return table(LOCK, partition) + service_key(service, key)


def inbox_prefix(partition: int, service: str, key: str) -> bytes:
    return table(INBOX, partition) + service_key(service, key)


def inbox(partition: int, service: str, key: str, seq: int) -> bytes:
    return inbox_prefix(partition, service, key) + _U64.pack(seq)


def inbox_head(partition: int, service: str, key: str) -> bytes:
    """Where the next pop of this key's inbox starts (see inbox.pop)."""
    return table(INBOX_HEAD, partition) + service_key(service, key)


def inbox_seq(row_key: bytes) -> int:
    return int(_U64.unpack_from(row_key, len(row_key) - 8)[0])


def timer(partition: int, fire_at: int, kind: int, ident: bytes) -> bytes:
    """Timers sort by fire time; `ident` makes the key unique (invocation id + completion id)."""
    return table(TIMER, partition) + _TIMER.pack(fire_at, kind) + ident


def timer_fire_at(key: bytes) -> tuple[int, int, bytes]:
    fire_at, kind = _TIMER.unpack_from(key, 3)
    return fire_at, kind, key[3 + _TIMER.size :]


def outbox(partition: int, seq: int) -> bytes:
    return table(OUTBOX, partition) + _U64.pack(seq)


def outbox_seq(key: bytes) -> int:
    return int(_U64.unpack_from(key, 3)[0])


def fsm(partition: int, name: bytes) -> bytes:
    return table(FSM, partition) + name


def promise_prefix(partition: int, service: str, key: str) -> bytes:
    return table(PROMISE, partition) + service_key(service, key)


def promise(partition: int, service: str, key: str, name: str) -> bytes:
    return promise_prefix(partition, service, key) + name.encode()


def history_prefix(partition: int, service: str, key: str) -> bytes:
    return table(HISTORY, partition) + service_key(service, key)


def history(partition: int, service: str, key: str, commit_ts: int, lsn: int) -> bytes:
    """One event: sorts by commit time, then log position (ties within one millisecond)."""
    return history_prefix(partition, service, key) + _POSITION.pack(commit_ts, lsn)


def history_position(row_key: bytes) -> tuple[int, int]:
    """(commit ts, lsn) of a `history` row key."""
    commit_ts, lsn = _POSITION.unpack_from(row_key, len(row_key) - _POSITION.size)
    return int(commit_ts), int(lsn)


def history_age_prefix(partition: int, service: str) -> bytes:
    return table(HISTORY_AGE, partition) + _lp(service)


def history_age(partition: int, service: str, commit_ts: int, lsn: int, key: str) -> bytes:
    return history_age_prefix(partition, service) + _POSITION.pack(commit_ts, lsn) + key.encode()


def split_history_age(row_key: bytes, prefix_len: int) -> tuple[int, int, str]:
    """(commit ts, lsn, object key) of a `history_age` row key whose prefix is `prefix_len` long."""
    commit_ts, lsn = _POSITION.unpack_from(row_key, prefix_len)
    return int(commit_ts), int(lsn), row_key[prefix_len + _POSITION.size :].decode()


def state_version(partition: int, service: str, key: str, state_key: bytes) -> bytes:
    return table(STATE_VERSION, partition) + service_key(service, key) + state_key


def history_trimmed(partition: int, service: str, key: str) -> bytes:
    return table(HISTORY_TRIMMED, partition) + service_key(service, key)


def history_retention(partition: int, service: str) -> bytes:
    return table(HISTORY_RETENTION, partition) + service.encode()


def u32(value: int) -> bytes:
    return _U32.pack(value)


def u64(value: int) -> bytes:
    return _U64.pack(value)


def read_u64(data: bytes) -> int:
    return int(_U64.unpack(data)[0])
