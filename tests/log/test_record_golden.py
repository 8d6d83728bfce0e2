"""Golden bytes of every log record kind: their field order is an on-disk format.

A record encoded today must decode the same way forever, and encoding must not drift: a change here
means old logs would be read wrongly. Add a new field at the end of a record, with a default, and
add a new kind here with its bytes (the last test fails until every kind has them).
"""

from __future__ import annotations

import pytest
from restate_server.log.records import (
    AnnounceLeader,
    Failure,
    InvocationResponse,
    Invoke,
    InvokerEffect,
    JournalEvent,
    NotifySignal,
    PatchState,
    Pause,
    Purge,
    PurgeJournal,
    Record,
    RecordKind,
    RestartAsNew,
    Resume,
    Source,
    Suspended,
    Terminate,
    TimerFired,
    TrimStateHistory,
    TruncateOutbox,
    Value,
    decode,
    encode,
)

GOLDEN: dict[RecordKind, tuple[Record, str]] = {
    RecordKind.ANNOUNCE_LEADER: (
        AnnounceLeader(epoch=0, leader_epoch=7),
        ("940100c007"),
    ),
    RecordKind.INVOKE: (
        Invoke(
            epoch=0,
            dedup=(3, 9),
            invocation_id=bytes(range(24)),
            service="Svc",
            handler="run",
            key="k1",
            service_ty="VirtualObject",
            handler_ty="exclusive",
            headers=[("h", "v")],
            body=b"\x01\x02",
            created_at=1700000000000,
            source=Source(
                kind="service", caller_id=b"\xaa" * 24, caller_target="Caller/go", subscription_id=None
            ),
            response_to=(b"\xbb" * 24, 4),
            idempotency_key="idem",
            execute_at=1700000005000,
            completion_retention=86400000,
            journal_retention=0,
            submit_request=12,
            is_call=True,
        ),
        (
            "dc00140200920309c418000102030405060708090a0b0c0d0e0f1011121314151617a3537663a372756ea26b31ad5669"
            "727475616c4f626a656374a96578636c75736976659192a168a176c4020102cf0000018bcfe5680094a7736572766963"
            "65c418aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa943616c6c65722f676fc092c418bbbbbbbbbbbbbb"
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb04a46964656dcf0000018bcfe57b88ce05265c00000cc3"
        ),
    ),
    RecordKind.INVOKER_EFFECT: (
        InvokerEffect(
            epoch=5,
            invocation_id=b"\x01" * 24,
            first_command_index=2,
            entries=[(0x0400, 0, b"\x0a\x01x")],
            pin=("dp_abc", 5),
            terminal=Suspended(completions=(1,), signals=(), names=("sig",)),
            now=1700000000001,
            event=JournalEvent(ty="Paused", json='{"ty":"Paused"}'),
        ),
        (
            "9a0305c0c418010101010101010101010101010101010101010101010101029193cd040000c4030a017892a664705f61"
            "62630594a773757370656e6491019091a3736967cf0000018bcfe5680192a6506175736564af7b227479223a2250"
            "6175736564227d"
        ),
    ),
    RecordKind.TIMER_FIRED: (
        TimerFired(epoch=5, timer_key=b"\x00\x01timer", now=1700000000002),
        ("950405c0c407000174696d6572cf0000018bcfe56802"),
    ),
    RecordKind.INVOCATION_RESPONSE: (
        InvocationResponse(
            dedup=(1, 2),
            invocation_id=b"\x02" * 24,
            completion_id=3,
            result=Value(content=b"42"),
            notification_type=0x800D,
        ),
        ("970500920102c4180202020202020202020202020202020202020202020202020392a576616c7565c4023432cd800d"),
    ),
    RecordKind.NOTIFY_SIGNAL: (
        NotifySignal(
            invocation_id=b"\x03" * 24,
            signal_index=17,
            signal_name=None,
            result=Failure(code=409, message="cancelled"),
            submit_request=5,
        ),
        (
            "980600c0c41803030303030303030303030303030303030303030303030311c093a76661696c757265cd0199a963616e"
            "63656c6c656405"
        ),
    ),
    RecordKind.PURGE: (
        Purge(epoch=5, invocation_ids=[b"\x04" * 24], now=1700000000003, submit_request=None),
        ("960705c091c418040404040404040404040404040404040404040404040404cf0000018bcfe56803c0"),
    ),
    RecordKind.TERMINATE: (
        Terminate(invocation_id=b"\x05" * 24, mode="kill", now=1700000000004, submit_request=6),
        ("970800c0c418050505050505050505050505050505050505050505050505a46b696c6ccf0000018bcfe5680406"),
    ),
    RecordKind.PATCH_STATE: (
        PatchState(
            service="Counter", key="k", new_state={b"count": b"1"}, expected_version="v1", now=1700000000007
        ),
        ("980900c0a7436f756e746572a16b81c405636f756e74c40131a27631cf0000018bcfe56807"),
    ),
    RecordKind.RESUME: (
        Resume(invocation_id=b"\x06" * 24, now=1700000000005, submit_request=7),
        ("960a00c0c418060606060606060606060606060606060606060606060606cf0000018bcfe5680507"),
    ),
    RecordKind.PAUSE: (
        Pause(invocation_id=b"\x07" * 24, now=1700000000006, submit_request=8),
        ("960b00c0c418070707070707070707070707070707070707070707070707cf0000018bcfe5680608"),
    ),
    RecordKind.TRUNCATE_OUTBOX: (TruncateOutbox(epoch=5, up_to_seq=7), "940c05c007"),
    RecordKind.PURGE_JOURNAL: (
        PurgeJournal(invocation_id=b"\x03" * 24, now=1700000000000, submit_request=4),
        ("960d00c0c418030303030303030303030303030303030303030303030303cf0000018bcfe5680004"),
    ),
    RecordKind.RESTART_AS_NEW: (
        RestartAsNew(
            invocation_id=b"\x03" * 24,
            new_invocation_id=b"\x04" * 24,
            copy_up_to=2,
            deployment_id="dp_abc",
            now=1700000000000,
            submit_request=5,
        ),
        (
            "990e00c0c418030303030303030303030303030303030303030303030303c418040404040404040404040404040404"
            "04040404040404040402a664705f616263cf0000018bcfe5680005"
        ),
    ),
    RecordKind.TRIM_STATE_HISTORY: (
        TrimStateHistory(epoch=5, now=1700000000008, retention={"Counter": 86_400_000}),
        "950f05c0cf0000018bcfe5680881a7436f756e746572ce05265c00",
    ),
}


@pytest.mark.parametrize("kind", list(GOLDEN), ids=[k.name.lower() for k in GOLDEN])
def test_record_encodes_to_its_golden_bytes(kind: RecordKind) -> None:
    record, golden = GOLDEN[kind]
    assert encode(record).hex() == golden


@pytest.mark.parametrize("kind", list(GOLDEN), ids=[k.name.lower() for k in GOLDEN])
def test_record_decodes_from_its_golden_bytes(kind: RecordKind) -> None:
    record, golden = GOLDEN[kind]
    assert decode(bytes.fromhex(golden)) == record


def test_patch_state_written_before_it_carried_a_time_still_decodes() -> None:
    old = bytes.fromhex("970900c0a7436f756e746572a16b81c405636f756e74c40131a27631")
    assert decode(old) == PatchState(
        service="Counter", key="k", new_state={b"count": b"1"}, expected_version="v1"
    )


def test_every_record_kind_has_golden_bytes() -> None:
    assert set(GOLDEN) == set(RecordKind)


def test_an_invoker_effect_logged_before_journal_events_still_decodes() -> None:
    """The `event` field was appended later: records without it decode with no event."""
    old = (
        "990305c0c418010101010101010101010101010101010101010101010101029193cd040000c4030a017892a664705f61"
        "62630594a773757370656e6491019091a3736967cf0000018bcfe56801"
    )
    record = decode(bytes.fromhex(old))
    assert isinstance(record, InvokerEffect)
    assert (record.event, record.now, record.pin) == (None, 1700000000001, ("dp_abc", 5))
