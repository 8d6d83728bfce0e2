"""Retention and purge: completed invocations are kept for their retention, then forgotten with their data."""

from __future__ import annotations

from restate_server.ids import InvocationId
from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.worker import actions as act
from sm_env import DAY_MS, TestEnv, command, effect, end_with, invoke
from sm_matchers import outcomes


def test_purge_forgets_a_completed_invocation_and_its_journal(env: TestEnv) -> None:
    record = invoke(completion_retention=DAY_MS, journal_retention=DAY_MS)
    env.apply(record)
    env.apply(end_with(record.invocation_id, b"r"))
    assert env.journal(record.invocation_id) != []
    actions = env.apply(rec.Purge(invocation_ids=[record.invocation_id], submit_request=1))
    assert outcomes(actions) == [act.Outcome.OK]
    assert env.status(record.invocation_id) is None
    assert env.journal(record.invocation_id) == []


def test_purge_of_a_running_or_unknown_invocation_is_refused(env: TestEnv) -> None:
    running = invoke()
    env.apply(running)
    unknown = InvocationId.deterministic(1, "nobody").to_bytes()
    actions = env.apply(
        rec.Purge(invocation_ids=[running.invocation_id], submit_request=1),
        rec.Purge(invocation_ids=[unknown], submit_request=2),
    )
    assert outcomes(actions) == [act.Outcome.NOT_COMPLETED, act.Outcome.NOT_FOUND]
    assert env.status(running.invocation_id) is not None


def test_purging_a_workflow_run_clears_its_state_and_promises(env: TestEnv) -> None:
    run_id = InvocationId.for_workflow("Signup", "u1").to_bytes()
    env.apply(invoke("Signup", "run", inv=run_id, key="u1", completion_retention=DAY_MS))
    set_state = command(pb.SetStateCommandMessage(key=b"s", value=pb.Value(content=b"1")))
    promise = command(
        pb.CompletePromiseCommandMessage(
            key="p", completion_value=pb.Value(content=b"v"), result_completion_id=1
        )
    )
    env.apply(effect(run_id, set_state, promise))
    env.apply(end_with(run_id, b"", first=3))
    assert env.state("Signup", "u1") == {b"s": b"1"}  # kept for the retention, with the run

    env.apply(rec.Purge(invocation_ids=[run_id]))
    assert env.state("Signup", "u1") == {}
    assert env.promise("Signup", "u1", "p") is None
