"""Awakeables and signals: completed by id from another invocation or the ingress, delivered once."""

from __future__ import annotations

from restate_server.ids import InvocationId, awakeable_id
from restate_server.log import records as rec
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType as T
from restate_server.worker import actions as act
from sm_env import DAY_MS, TestEnv, command, effect, end_with, invoke, value
from sm_matchers import decode, forwarded, of_type, outcomes, sent


def _two_invocations(env: TestEnv) -> tuple[bytes, bytes]:
    waiter, completer = invoke(n=1), invoke(n=2)
    env.apply(waiter, completer)
    return waiter.invocation_id, completer.invocation_id


def test_complete_awakeable_sends_the_value_to_the_awaiting_invocation(env: TestEnv) -> None:
    waiter, completer = _two_invocations(env)
    complete = command(
        pb.CompleteAwakeableCommandMessage(
            awakeable_id=awakeable_id(waiter, 17), value=pb.Value(content=b"ok")
        )
    )
    [signal] = sent(env.apply(effect(completer, complete)))
    assert signal == rec.NotifySignal(
        invocation_id=waiter, signal_index=17, signal_name=None, result=value(b"ok")
    )

    actions = env.apply(signal)
    [(note_type, index)] = forwarded(actions)
    assert decode(note_type, env.journal(waiter)[index].payload) == pb.SignalNotificationMessage(
        idx=17, value=pb.Value(content=b"ok")
    )


def test_an_awakeable_completes_once(env: TestEnv) -> None:
    waiter, _ = _two_invocations(env)
    first = rec.NotifySignal(
        invocation_id=waiter, signal_index=17, signal_name=None, result=value(b"1"), submit_request=1
    )
    again = rec.NotifySignal(
        invocation_id=waiter, signal_index=17, signal_name=None, result=value(b"2"), submit_request=2
    )
    actions = env.apply(first, again)
    assert outcomes(actions) == [act.Outcome.OK, act.Outcome.COMPLETED]
    assert env.journal_types(waiter).count(T.SIGNAL_NOTIFICATION) == 1


def test_awakeables_can_be_rejected(env: TestEnv) -> None:
    waiter, completer = _two_invocations(env)
    reject = command(
        pb.CompleteAwakeableCommandMessage(
            awakeable_id=awakeable_id(waiter, 18), failure=pb.Failure(code=500, message="no")
        )
    )
    [signal] = sent(env.apply(effect(completer, reject)))
    assert isinstance(signal, rec.NotifySignal)
    assert signal.result == rec.Failure(code=500, message="no")
    env.apply(signal)
    assert decode(T.SIGNAL_NOTIFICATION, env.journal(waiter)[-1].payload) == pb.SignalNotificationMessage(
        idx=18, failure=pb.Failure(code=500, message="no")
    )


def test_send_signal_by_name_delivers_a_void_signal(env: TestEnv) -> None:
    waiter, sender = _two_invocations(env)
    send = command(
        pb.SendSignalCommandMessage(
            target_invocation_id=str(InvocationId.from_bytes(waiter)), name="go", void=pb.Void()
        )
    )
    [signal] = sent(env.apply(effect(sender, send)))
    assert signal == rec.NotifySignal(
        invocation_id=waiter, signal_index=None, signal_name="go", result=rec.Void()
    )
    env.apply(signal)
    assert decode(T.SIGNAL_NOTIFICATION, env.journal(waiter)[-1].payload) == pb.SignalNotificationMessage(
        name="go", void=pb.Void()
    )


def test_send_signal_by_index_carries_its_value(env: TestEnv) -> None:
    waiter, sender = _two_invocations(env)
    send = command(
        pb.SendSignalCommandMessage(
            target_invocation_id=str(InvocationId.from_bytes(waiter)), idx=20, value=pb.Value(content=b"v")
        )
    )
    [signal] = sent(env.apply(effect(sender, send)))
    assert signal == rec.NotifySignal(
        invocation_id=waiter, signal_index=20, signal_name=None, result=value(b"v")
    )


def test_unparseable_target_ids_are_journaled_and_ignored(env: TestEnv) -> None:
    _, sender = _two_invocations(env)
    bad_awakeable = command(
        pb.CompleteAwakeableCommandMessage(awakeable_id="sign_1nope", value=pb.Value(content=b""))
    )
    bad_target = command(
        pb.SendSignalCommandMessage(target_invocation_id="inv_1nope", idx=17, void=pb.Void())
    )
    assert sent(env.apply(effect(sender, bad_awakeable, bad_target))) == []
    assert env.must_status(sender).commands == 3


def test_signals_for_unknown_or_completed_invocations_say_so(env: TestEnv) -> None:
    done = invoke(n=3, completion_retention=DAY_MS)
    env.apply(done)
    env.apply(end_with(done.invocation_id, b""))
    unknown = InvocationId.deterministic(1, "unknown").to_bytes()
    actions = env.apply(
        rec.NotifySignal(
            invocation_id=unknown, signal_index=17, signal_name=None, result=rec.Void(), submit_request=1
        ),
        rec.NotifySignal(
            invocation_id=done.invocation_id,
            signal_index=17,
            signal_name=None,
            result=rec.Void(),
            submit_request=2,
        ),
    )
    assert outcomes(actions) == [act.Outcome.NOT_FOUND, act.Outcome.COMPLETED]
    assert of_type(actions, act.ForwardNotification) == []
