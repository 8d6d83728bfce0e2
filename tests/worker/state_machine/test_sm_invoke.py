"""Invoke and complete: creation, the journal, outputs, retention, key locks and calls between invocations."""

from __future__ import annotations

from restate_server.ids import InvocationId, partition_key_for
from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.storage.status import Status
from restate_server.worker import actions as act
from sm_env import DAY_MS, START, TestEnv, call, command, effect, end_with, invoke, output_failure, raw, value
from sm_matchers import completed, decode, forwarded, of_type, sent, started


def test_invoke_starts_an_invocation_with_its_input_journaled(env: TestEnv) -> None:
    record = invoke(body=b"hello", submit_request=7)
    actions = env.apply(record)
    inv = record.invocation_id
    assert started(actions) == [inv]
    assert of_type(actions, act.SubmitOutcome) == [
        act.SubmitOutcome(request_id=7, outcome=act.Outcome.ACCEPTED, invocation_id=inv)
    ]
    st = env.must_status(inv)
    assert (st.status, st.commands, st.journal_length) == (Status.INVOKED, 1, 1)
    [entry] = env.journal(inv)
    assert entry.type == T.INPUT_COMMAND
    assert decode(entry.type, entry.payload) == pb.InputCommandMessage(value=pb.Value(content=b"hello"))


def test_end_completes_with_the_output_and_forgets_without_retention(env: TestEnv) -> None:
    record = invoke()
    env.apply(record)
    actions = env.apply(end_with(record.invocation_id, b"out"))
    assert completed(actions) == {record.invocation_id: value(b"out")}
    assert env.status(record.invocation_id) is None
    assert env.journal(record.invocation_id) == []


def test_end_without_output_completes_with_an_empty_value(env: TestEnv) -> None:
    record = invoke()
    env.apply(record)
    actions = env.apply(effect(record.invocation_id, terminal=rec.Ended()))
    assert completed(actions) == {record.invocation_id: value(b"")}


def test_failure_output_completes_with_the_failure(env: TestEnv) -> None:
    record = invoke()
    env.apply(record)
    ending = effect(record.invocation_id, output_failure(412, "nope"), terminal=rec.Ended())
    assert completed(env.apply(ending)) == {record.invocation_id: rec.Failure(code=412, message="nope")}


def test_completion_retention_keeps_the_result_and_journal_retention_the_journal(env: TestEnv) -> None:
    kept = invoke(n=1, completion_retention=DAY_MS)
    journaled = invoke(n=2, completion_retention=DAY_MS, journal_retention=2 * DAY_MS)
    env.apply(kept, journaled)
    env.apply(
        end_with(kept.invocation_id, b"a", now=START + 50),
        end_with(journaled.invocation_id, b"b", now=START + 60),
    )
    st = env.must_status(kept.invocation_id)
    assert (st.status, st.result, st.completed_at) == (Status.COMPLETED, value(b"a"), START + 50)
    assert st.expires_at == START + 50 + DAY_MS
    assert env.journal(kept.invocation_id) == []
    st = env.must_status(journaled.invocation_id)
    assert st.expires_at == START + 60 + 2 * DAY_MS
    assert env.journal_types(journaled.invocation_id) == [T.INPUT_COMMAND, T.OUTPUT_COMMAND]


def test_the_first_effect_pins_the_deployment(env: TestEnv) -> None:
    record = invoke()
    env.apply(record)
    env.apply(effect(record.invocation_id, pin=("dp_1abc", 6), now=START + 5))
    env.apply(effect(record.invocation_id, pin=("dp_other", 5)))
    st = env.must_status(record.invocation_id)
    assert (st.deployment_id, st.protocol_version, st.running_at) == ("dp_1abc", 6, START + 5)


def test_commands_resent_by_a_retried_attempt_are_journaled_once(env: TestEnv) -> None:
    record = invoke("Counter", "add", key="k")
    env.apply(record)
    set_a = command(pb.SetStateCommandMessage(key=b"a", value=pb.Value(content=b"1")))
    set_b = command(pb.SetStateCommandMessage(key=b"b", value=pb.Value(content=b"2")))
    env.apply(effect(record.invocation_id, set_a), effect(record.invocation_id, set_a, set_b))
    st = env.must_status(record.invocation_id)
    assert (st.commands, st.journal_length) == (3, 3)
    assert env.state("Counter", "k") == {b"a": b"1", b"b": b"2"}


def test_exclusive_calls_on_one_key_queue_and_shared_ones_do_not(env: TestEnv) -> None:
    first, second = invoke("Counter", "add", n=1, key="k"), invoke("Counter", "add", n=2, key="k")
    reader = invoke("Counter", "get", n=3, key="k")
    other_key = invoke("Counter", "add", n=4, key="other")
    actions = env.apply(first, second, reader, other_key)
    assert started(actions) == [first.invocation_id, reader.invocation_id, other_key.invocation_id]
    assert env.must_status(second.invocation_id).status == Status.INBOXED
    assert env.lock_holder("Counter", "k") == first.invocation_id

    actions = env.apply(end_with(first.invocation_id, b"1"))
    assert started(actions) == [second.invocation_id]
    assert env.lock_holder("Counter", "k") == second.invocation_id
    env.apply(end_with(second.invocation_id, b"2"))
    assert env.lock_holder("Counter", "k") is None


def test_call_creates_the_child_and_its_result_reaches_the_caller(env: TestEnv) -> None:
    parent = invoke()
    env.apply(parent)
    actions = env.apply(effect(parent.invocation_id, call("Counter", "add", key="k", parameter=b"5")))
    [child] = sent(actions)
    assert isinstance(child, rec.Invoke)
    assert (child.service, child.handler, child.key, child.body) == ("Counter", "add", "k", b"5")
    assert child.response_to == (parent.invocation_id, 2)
    assert child.source.caller_id == parent.invocation_id
    assert InvocationId.from_bytes(child.invocation_id).partition_key == partition_key_for("k")
    # the caller learns the child's id at once
    [(note_type, index)] = forwarded(actions)
    note = decode(note_type, env.journal(parent.invocation_id)[index].payload)
    assert note == pb.CallInvocationIdCompletionNotificationMessage(
        completion_id=1, invocation_id=str(InvocationId.from_bytes(child.invocation_id))
    )

    env.apply(child)
    [response] = sent(env.apply(end_with(child.invocation_id, b"done")))
    assert response == rec.InvocationResponse(
        invocation_id=parent.invocation_id, completion_id=2, result=value(b"done")
    )
    actions = env.apply(response)
    [(note_type, index)] = forwarded(actions)
    assert note_type == T.CALL_COMPLETION
    assert decode(
        note_type, env.journal(parent.invocation_id)[index].payload
    ) == pb.CallCompletionNotificationMessage(completion_id=2, value=pb.Value(content=b"done"))
    # a result for an invocation that has completed meanwhile is dropped
    env.apply(end_with(parent.invocation_id, b"x", first=2))
    assert env.apply(response) == []


def test_call_ids_derive_from_the_caller_and_the_journal_index(env: TestEnv) -> None:
    parent = invoke()
    env.apply(parent)
    [first] = sent(env.apply(effect(parent.invocation_id, call("Greeter", "greet"))))
    assert isinstance(first, rec.Invoke)
    expected = InvocationId.deterministic(
        InvocationId.from_bytes(parent.invocation_id).partition_key, "call", parent.invocation_id, "1"
    )
    assert first.invocation_id == expected.to_bytes()
    assert first.key is None


def test_one_way_call_sends_a_delayed_invoke_without_a_response_sink(env: TestEnv) -> None:
    parent = invoke()
    env.apply(parent)
    send = command(
        pb.OneWayCallCommandMessage(
            service_name="Counter",
            handler_name="add",
            key="k",
            invoke_time=START + 5_000,
            invocation_id_notification_idx=1,
        )
    )
    [child] = sent(env.apply(effect(parent.invocation_id, send)))
    assert isinstance(child, rec.Invoke)
    assert (child.response_to, child.execute_at, child.is_call) == (None, START + 5_000, False)


def test_idempotent_and_workflow_children_get_the_upstream_ids_and_a_day_of_retention(env: TestEnv) -> None:
    parent = invoke()
    env.apply(parent)
    idempotent = command(
        pb.CallCommandMessage(
            service_name="Greeter",
            handler_name="greet",
            idempotency_key="ik",
            invocation_id_notification_idx=1,
            result_completion_id=2,
        )
    )
    workflow = call("Signup", "run", key="u1", id_idx=3, cid=4)
    sent_records = sent(env.apply(effect(parent.invocation_id, idempotent, workflow)))
    assert [r.invocation_id for r in sent_records if isinstance(r, rec.Invoke)] == [
        InvocationId.for_idempotent_request("Greeter", "greet", "ik").to_bytes(),
        InvocationId.for_workflow("Signup", "u1").to_bytes(),
    ]
    assert [r.completion_retention for r in sent_records if isinstance(r, rec.Invoke)] == [DAY_MS, DAY_MS]


def test_run_completions_are_journaled_and_acknowledged_when_asked(env: TestEnv) -> None:
    record = invoke()
    env.apply(record)
    ok = raw(
        T.PROPOSE_RUN_COMPLETION,
        pb.ProposeRunCompletionMessage(result_completion_id=1, value=b"v").SerializeToString(),
    )
    failed = raw(
        T.PROPOSE_RUN_COMPLETION,
        pb.ProposeRunCompletionMessage(
            result_completion_id=2, failure=pb.Failure(code=500, message="x")
        ).SerializeToString(),
        flags=0x8000,
    )
    actions = env.apply(effect(record.invocation_id, ok, failed))
    notes = of_type(actions, act.ForwardNotification)
    assert [(n.type, n.ack_completion_id) for n in notes] == [(T.RUN_COMPLETION, None), (T.RUN_COMPLETION, 2)]
    journal = env.journal(record.invocation_id)
    assert [decode(T.RUN_COMPLETION, journal[n.journal_index].payload) for n in notes] == [
        pb.RunCompletionNotificationMessage(completion_id=1, value=pb.Value(content=b"v")),
        pb.RunCompletionNotificationMessage(completion_id=2, failure=pb.Failure(code=500, message="x")),
    ]
    assert env.must_status(record.invocation_id).commands == 1  # proposals are not commands


def test_a_completion_id_is_completed_once(env: TestEnv) -> None:
    record = invoke()
    env.apply(record)
    env.apply(effect(record.invocation_id, call("Greeter", "greet", cid=2)))
    response = rec.InvocationResponse(invocation_id=record.invocation_id, completion_id=2, result=value(b"1"))
    assert len(forwarded(env.apply(response))) == 1
    assert forwarded(env.apply(response)) == []  # a second result (no dedup tag) changes nothing
    assert env.journal_types(record.invocation_id).count(T.CALL_COMPLETION) == 1


def test_input_headers_are_journaled_with_the_input(env: TestEnv) -> None:
    record = invoke(headers=[("x-trace", "abc")])
    env.apply(record)
    entry = env.journal(record.invocation_id)[0]
    assert decode(entry.type, entry.payload) == pb.InputCommandMessage(
        value=pb.Value(content=b"input"), headers=[pb.Header(key="x-trace", value="abc")]
    )
