"""Restart as new and purge journal: what a completed invocation's journal can still be used for."""

from __future__ import annotations

from restate_server.ids import InvocationId
from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.storage.status import Status
from restate_server.worker import actions as act
from sm_env import DAY_MS, START, TestEnv, command, effect, end_with, invocation_id, invoke
from sm_matchers import of_type, outcomes, started

NEW = invocation_id(99)


def _sleep(cid: int) -> tuple[int, int, bytes]:
    return command(pb.SleepCommandMessage(wake_up_time=START + 10, result_completion_id=cid))


def _completed(env: TestEnv, *, protocol: int = 6) -> bytes:
    """Greeter/greet with a sleep that completed, then output: Input, Sleep, SleepCompletion, Output."""
    record = invoke(completion_retention=DAY_MS, journal_retention=DAY_MS, headers=[("h", "v")])
    inv = record.invocation_id
    env.apply(record)
    env.apply(effect(inv, _sleep(1), pin=("dp_x", protocol)))
    (timer,) = env.timers()
    env.apply(rec.TimerFired(timer_key=timer, now=START + 10))
    env.apply(end_with(inv, b"done", first=2))
    assert env.must_status(inv).status == Status.COMPLETED
    return inv


def _restart(env: TestEnv, inv: bytes, copy_up_to: int = 0, **fields: object) -> list[act.Action]:
    return env.apply(
        rec.RestartAsNew(
            invocation_id=inv,
            new_invocation_id=NEW,
            copy_up_to=copy_up_to,
            submit_request=7,
            **fields,  # type: ignore[arg-type]
        )
    )


def test_restart_starts_a_new_invocation_with_the_same_input(env: TestEnv) -> None:
    inv = _completed(env)
    actions = _restart(env, inv)
    (answer,) = of_type(actions, act.SubmitOutcome)
    assert (answer.outcome, answer.invocation_id) == (act.Outcome.OK, NEW)
    assert started(actions) == [NEW]
    new = env.must_status(NEW)
    assert (new.status, new.service, new.handler) == (Status.INVOKED, "Greeter", "greet")
    assert new.source[:2] == ["restart_as_new", inv]
    assert env.journal_types(NEW) == [T.INPUT_COMMAND]
    assert env.journal(NEW)[0] == env.journal(inv)[0]  # same input and headers
    assert env.must_status(inv).status == Status.COMPLETED  # the old one is untouched


def test_restart_from_a_prefix_copies_it_with_its_completions(env: TestEnv) -> None:
    inv = _completed(env)
    _restart(env, inv, copy_up_to=1)
    assert env.journal_types(NEW) == [T.INPUT_COMMAND, T.SLEEP_COMMAND, T.SLEEP_COMPLETION]
    new = env.must_status(NEW)
    assert (new.commands, new.completed_ids, new.deployment_id) == (2, [1], "dp_x")


def test_restart_keeps_or_replaces_the_pinned_deployment(env: TestEnv) -> None:
    inv = _completed(env)
    _restart(env, inv, deployment_id="dp_new")
    assert env.must_status(NEW).deployment_id == "dp_new"
    assert env.must_status(NEW).protocol_version == 6


def test_restart_refusals_follow_upstream(env: TestEnv) -> None:
    running = invoke(n=2)
    env.apply(running)
    assert outcomes(_restart(env, running.invocation_id)) == [act.Outcome.STILL_RUNNING]
    unknown = InvocationId.deterministic(1, "nobody").to_bytes()
    assert outcomes(_restart(env, unknown)) == [act.Outcome.NOT_FOUND]
    delayed = invoke(n=3, execute_at=START + 1_000_000)
    env.apply(delayed)
    assert outcomes(_restart(env, delayed.invocation_id)) == [act.Outcome.NOT_STARTED]
    assert env.status(NEW) is None


def test_restart_of_a_workflow_or_an_old_protocol_prefix_is_unsupported(env: TestEnv) -> None:
    run_id = InvocationId.for_workflow("Signup", "u1").to_bytes()
    env.apply(
        invoke("Signup", "run", inv=run_id, key="u1", completion_retention=DAY_MS, journal_retention=DAY_MS)
    )
    env.apply(end_with(run_id, b""))
    assert outcomes(_restart(env, run_id)) == [act.Outcome.UNSUPPORTED]
    old = _completed(env, protocol=5)
    assert outcomes(_restart(env, old, copy_up_to=1)) == [act.Outcome.UNSUPPORTED]
    assert outcomes(_restart(env, old)) == [act.Outcome.OK]  # from the start it works


def test_restart_refuses_a_prefix_with_a_pending_command_or_past_the_journal(env: TestEnv) -> None:
    record = invoke(completion_retention=DAY_MS, journal_retention=DAY_MS)
    inv = record.invocation_id
    env.apply(record)
    env.apply(effect(inv, _sleep(1), pin=("dp_x", 6)))
    env.apply(rec.Terminate(invocation_id=inv, mode="kill"))  # the sleep never completed
    assert outcomes(_restart(env, inv, copy_up_to=1)) == [act.Outcome.COPY_RANGE_INVALID]
    assert outcomes(_restart(env, inv, copy_up_to=9)) == [act.Outcome.COPY_RANGE_INVALID]


def test_restart_without_a_retained_journal_misses_its_input(env: TestEnv) -> None:
    inv = _completed(env)
    assert outcomes(env.apply(rec.PurgeJournal(invocation_id=inv, submit_request=1))) == [act.Outcome.OK]
    assert outcomes(_restart(env, inv)) == [act.Outcome.MISSING_INPUT]


def test_purge_journal_keeps_the_status_and_result(env: TestEnv) -> None:
    inv = _completed(env)
    env.apply(rec.PurgeJournal(invocation_id=inv))
    st = env.must_status(inv)
    assert (st.status, st.result, st.journal_length, st.commands) == (
        Status.COMPLETED,
        rec.Value(content=b"done"),
        0,
        0,
    )
    assert env.journal(inv) == []


def test_purge_journal_of_a_running_or_unknown_invocation_is_refused(env: TestEnv) -> None:
    running = invoke()
    env.apply(running)
    unknown = InvocationId.deterministic(1, "nobody").to_bytes()
    actions = env.apply(
        rec.PurgeJournal(invocation_id=running.invocation_id, submit_request=1),
        rec.PurgeJournal(invocation_id=unknown, submit_request=2),
    )
    assert outcomes(actions) == [act.Outcome.NOT_COMPLETED, act.Outcome.NOT_FOUND]
    assert env.journal_types(running.invocation_id) == [T.INPUT_COMMAND]
