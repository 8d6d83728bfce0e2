"""Journal events: transient errors and pauses are kept beside the journal, and go with it."""

from __future__ import annotations

from restate_server.log import records as rec
from restate_server.storage import journal_events
from restate_server.storage.status import Status
from restate_server.storage.transaction import Transaction
from sm_env import DAY_MS, START, TestEnv, end_with, invoke

FAILED = rec.JournalEvent(ty="TransientError", json='{"ty":"TransientError","error_code":500}')


def _events(env: TestEnv, inv: bytes) -> list[journal_events.StoredEvent]:
    return journal_events.read(Transaction(env.db), env.partition, inv)


def test_an_effect_carrying_an_event_records_it_after_the_last_entry(env: TestEnv) -> None:
    record = invoke()
    env.apply(record)
    failed = rec.InvokerEffect(
        invocation_id=record.invocation_id, first_command_index=0, entries=[], now=START + 50, event=FAILED
    )
    env.apply(failed)
    (stored,) = _events(env, record.invocation_id)
    assert (stored.after_journal_entry_index, stored.appended_at, stored.event) == (0, START + 50, FAILED)
    assert env.must_status(record.invocation_id).status == Status.INVOKED  # nothing else changed


def test_pauses_are_recorded_with_or_without_a_failure(env: TestEnv) -> None:
    record = invoke()
    inv = record.invocation_id
    env.apply(record)
    gave_up = rec.JournalEvent(ty="Paused", json='{"ty":"Paused","last_failure":{"error_code":500}}')
    paused = rec.Paused(code=500, message="boom")
    env.apply(
        rec.InvokerEffect(
            invocation_id=inv, first_command_index=1, entries=[], terminal=paused, event=gave_up
        )
    )
    assert env.must_status(inv).status == Status.PAUSED
    env.apply(rec.Resume(invocation_id=inv))
    env.apply(rec.Pause(invocation_id=inv))
    assert [e.event for e in _events(env, inv)] == [
        gave_up,
        rec.JournalEvent(ty="Paused", json='{"ty":"Paused"}'),
    ]


def test_events_go_with_the_journal(env: TestEnv) -> None:
    record = invoke(completion_retention=DAY_MS, journal_retention=DAY_MS)
    inv = record.invocation_id
    env.apply(record)
    env.apply(rec.InvokerEffect(invocation_id=inv, first_command_index=0, entries=[], event=FAILED))
    env.apply(end_with(inv, b"ok"))
    assert len(_events(env, inv)) == 1
    env.apply(rec.PurgeJournal(invocation_id=inv))
    assert _events(env, inv) == []
