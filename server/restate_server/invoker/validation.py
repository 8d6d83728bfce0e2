"""Every message a deployment sends is parsed and checked here before any of it is proposed.

The processor applies journaled commands long after the attempt that sent them, and again on every
replay of the log: a payload it cannot parse there would fail the partition, not the deployment that
sent it. So the attempt parses each frame once with its protobuf class, checks the fields upstream
requires (its entry codec's `get_or_bail!`/`to_string_or_bail!`) and the rules of the invoked target
(state only on virtual objects and workflows, writes only from their exclusive handlers, durable
promises only on workflows), and turns anything else into a failed attempt: RT0012 (protocol
violation) or RT0017 (failed precondition), retried by the normal policy. What passes is journaled as
the bytes that were checked; nothing is re-encoded.

Pure functions over a frame and the target's `Rules`; no I/O, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError, Message

from restate_server.ids import IdError, InvocationId, decode_awakeable_id
from restate_server.invoker.errors import AttemptError, SdkError
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.codec import Frame
from restate_server.protocol.messages import MessageType as T, flatten_future
from restate_server.schema.model import HandlerType, ServiceType

PROTOCOL_VIOLATION = "RT0012"
FAILED_PRECONDITION = "RT0017"
UNKNOWN_CALLEE = "RT0018"

Callees = Callable[[str, str], object | None]
"""(service, handler) -> the registered handler, or None: whom a call command may target."""


class Kind(enum.Enum):
    """What an accepted frame means to the attempt, beyond the two results that carry data."""

    COMMAND = enum.auto()  # journal it; it takes the next command index
    RUN_PROPOSAL = enum.auto()  # journal it as the run's completion
    AWAITING_ON = enum.auto()  # informational (V7)
    END = enum.auto()  # the invocation finished


@dataclass(frozen=True, slots=True, kw_only=True)
class Suspended:
    """The SDK suspended, waiting for any of these (V7 trees are flattened, as upstream does)."""

    completions: list[int]
    signals: list[int]
    names: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed:
    """The SDK reported an error (ErrorMessage); the attempt fails with it."""

    error: SdkError


Checked = Kind | Suspended | Failed


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    """What the negotiated protocol version and the invoked handler allow."""

    protocol_version: int
    reads_state: bool = True
    writes_state: bool = True
    promises: bool = True
    callees: Callees | None = None  # None: calls are not checked against the schema

    @classmethod
    def for_target(
        cls,
        protocol_version: int,
        service: ServiceType | None,
        handler: HandlerType | None,
        callees: Callees | None = None,
    ) -> Rules:
        """Upstream's `InvocationTargetType::can_read_state`/`can_write_state` and workflow check."""
        keyed = service is not None and service.keyed
        return cls(
            protocol_version=protocol_version,
            reads_state=keyed,
            writes_state=keyed and handler is not HandlerType.SHARED,
            promises=service is ServiceType.WORKFLOW,
            callees=callees,
        )


class _Needs(enum.Enum):
    NOTHING = enum.auto()
    READ_STATE = enum.auto()
    WRITE_STATE = enum.auto()
    PROMISES = enum.auto()


@dataclass(frozen=True, slots=True)
class _Spec:
    """How to check one command type: its class, required fields, UTF-8 keys, target rule."""

    cls: type[Message]
    required: tuple[str, ...] = ()  # message fields or oneofs that must be set (HasField)
    utf8: tuple[str, ...] = ()  # bytes fields that must be UTF-8 (state keys are strings upstream)
    needs: _Needs = _Needs.NOTHING
    check: Callable[[Any], AttemptError | None] | None = None  # what the table cannot say


def _violation(message: str) -> AttemptError:
    return AttemptError(PROTOCOL_VIOLATION, message)


def message_name(t: int) -> str:
    """`SetStateCommand` for 0x0403, as upstream prints message types."""
    try:
        return T(t).name.title().replace("_", "")
    except ValueError:
        return f"{t:#06x}"


def _state_keys(msg: pb.GetEagerStateKeysCommandMessage) -> AttemptError | None:
    for key in msg.value.keys:
        try:
            key.decode()
        except UnicodeDecodeError:
            return _violation("GetEagerStateKeysCommand: a state key is not valid UTF-8")
    return None


def _signal_target(msg: pb.SendSignalCommandMessage) -> AttemptError | None:
    try:
        InvocationId.parse(msg.target_invocation_id)
    except IdError as exc:
        return _violation(f"SendSignalCommand: bad field target_invocation_id, reason: {exc}")
    return None


def _awakeable(msg: pb.CompleteAwakeableCommandMessage) -> AttemptError | None:
    try:
        decode_awakeable_id(msg.awakeable_id)
    except IdError as exc:
        return _violation(f"the given awakeable id {msg.awakeable_id!r} is not valid: {exc}")
    return None


def _invocation_target(
    msg: pb.AttachInvocationCommandMessage | pb.GetInvocationOutputCommandMessage,
) -> AttemptError | None:
    if msg.WhichOneof("target") != "invocation_id":
        return None
    try:
        InvocationId.parse(msg.invocation_id)
    except IdError as exc:
        return AttemptError(FAILED_PRECONDITION, f"invalid invocation id {msg.invocation_id}: {exc}")
    return None


_COMMANDS: dict[int, _Spec] = {
    T.INPUT_COMMAND: _Spec(pb.InputCommandMessage, required=("value",)),
    T.OUTPUT_COMMAND: _Spec(pb.OutputCommandMessage, required=("result",)),
    T.GET_LAZY_STATE_COMMAND: _Spec(pb.GetLazyStateCommandMessage, utf8=("key",), needs=_Needs.READ_STATE),
    T.SET_STATE_COMMAND: _Spec(
        pb.SetStateCommandMessage, required=("value",), utf8=("key",), needs=_Needs.WRITE_STATE
    ),
    T.CLEAR_STATE_COMMAND: _Spec(pb.ClearStateCommandMessage, utf8=("key",), needs=_Needs.WRITE_STATE),
    T.CLEAR_ALL_STATE_COMMAND: _Spec(pb.ClearAllStateCommandMessage, needs=_Needs.WRITE_STATE),
    T.GET_LAZY_STATE_KEYS_COMMAND: _Spec(pb.GetLazyStateKeysCommandMessage, needs=_Needs.READ_STATE),
    T.GET_EAGER_STATE_COMMAND: _Spec(
        pb.GetEagerStateCommandMessage, required=("result",), utf8=("key",), needs=_Needs.READ_STATE
    ),
    T.GET_EAGER_STATE_KEYS_COMMAND: _Spec(
        pb.GetEagerStateKeysCommandMessage, required=("value",), needs=_Needs.READ_STATE, check=_state_keys
    ),
    T.GET_PROMISE_COMMAND: _Spec(pb.GetPromiseCommandMessage, needs=_Needs.PROMISES),
    T.PEEK_PROMISE_COMMAND: _Spec(pb.PeekPromiseCommandMessage, needs=_Needs.PROMISES),
    T.COMPLETE_PROMISE_COMMAND: _Spec(
        pb.CompletePromiseCommandMessage, required=("completion",), needs=_Needs.PROMISES
    ),
    T.SLEEP_COMMAND: _Spec(pb.SleepCommandMessage),
    T.CALL_COMMAND: _Spec(pb.CallCommandMessage),
    T.ONE_WAY_CALL_COMMAND: _Spec(pb.OneWayCallCommandMessage),
    T.SEND_SIGNAL_COMMAND: _Spec(
        pb.SendSignalCommandMessage, required=("signal_id", "result"), check=_signal_target
    ),
    T.RUN_COMMAND: _Spec(pb.RunCommandMessage),
    T.ATTACH_INVOCATION_COMMAND: _Spec(
        pb.AttachInvocationCommandMessage, required=("target",), check=_invocation_target
    ),
    T.GET_INVOCATION_OUTPUT_COMMAND: _Spec(
        pb.GetInvocationOutputCommandMessage, required=("target",), check=_invocation_target
    ),
    T.COMPLETE_AWAKEABLE_COMMAND: _Spec(
        pb.CompleteAwakeableCommandMessage, required=("result",), check=_awakeable
    ),
}

_PRECONDITIONS = {
    _Needs.READ_STATE: "this service type doesn't have state access",
    _Needs.WRITE_STATE: "this handler type cannot write state",
    _Needs.PROMISES: "only Workflow services support it",
}


def _parse(cls: type[Message], frame: Frame) -> Any:
    try:
        return cls.FromString(frame.payload)
    except DecodeError as exc:
        raise _violation(f"cannot decode message type {message_name(frame.type)}: {exc}") from None


def _allowed(needs: _Needs, rules: Rules) -> bool:
    match needs:
        case _Needs.NOTHING:
            return True
        case _Needs.READ_STATE:
            return rules.reads_state
        case _Needs.WRITE_STATE:
            return rules.writes_state
        case _Needs.PROMISES:
            return rules.promises


def _command(spec: _Spec, frame: Frame, rules: Rules, command_index: int) -> Kind:
    msg = _parse(spec.cls, frame)
    name = message_name(frame.type)
    for field_name in spec.required:
        if not msg.HasField(field_name):
            raise _violation(f"{name}: missing required field {field_name}")
    for field_name in spec.utf8:
        try:
            getattr(msg, field_name).decode()
        except UnicodeDecodeError:
            raise _violation(f"{name}: bad field {field_name}, reason: not valid UTF-8") from None
    if spec.check is not None and (error := spec.check(msg)) is not None:
        raise error
    if not _allowed(spec.needs, rules):
        raise AttemptError(
            FAILED_PRECONDITION,
            f"cannot process command {name} (command index {command_index}) because of a failed"
            f" precondition: unsupported entry type, {_PRECONDITIONS[spec.needs]}",
        )
    callees = rules.callees
    if (
        isinstance(msg, _CALLS)
        and callees is not None
        and callees(msg.service_name, msg.handler_name) is None
    ):
        # upstream's `CommandPreconditionError::ServiceHandlerNotFound`: the attempt fails and is
        # retried (the callee may be registered meanwhile), the call is not journaled
        raise AttemptError(
            UNKNOWN_CALLEE,
            f"cannot process command {name} (command index {command_index}) because of a failed"
            f" precondition: the service handler {msg.service_name}/{msg.handler_name} was not found",
        )
    return Kind.COMMAND


_CALLS = (pb.CallCommandMessage, pb.OneWayCallCommandMessage)


def _suspension(frame: Frame, rules: Rules) -> Suspended:
    if rules.protocol_version < 7:
        legacy: pb.SuspensionMessageV6 = _parse(pb.SuspensionMessageV6, frame)
        completions = list(legacy.waiting_completions)
        signals = list(legacy.waiting_signals)
        names = list(legacy.waiting_named_signals)
    else:
        msg: pb.SuspensionMessage = _parse(pb.SuspensionMessage, frame)
        completions, signals, names = flatten_future(msg.awaiting_on)
    if not (completions or signals or names):
        raise _violation("got empty SuspensionMessage")
    return Suspended(completions=completions, signals=signals, names=names)


def _error(frame: Frame) -> Failed:
    msg: pb.ErrorMessage = _parse(pb.ErrorMessage, frame)
    retry_after = msg.next_retry_delay / 1000 if msg.HasField("next_retry_delay") else None
    return Failed(error=SdkError(msg.code, msg.message, retry_after=retry_after, behavior=int(msg.behavior)))


def check(frame: Frame, rules: Rules, command_index: int) -> Checked:
    """Parse and check one frame from the deployment; raise `AttemptError` if it must not pass.

    `command_index` is the index the frame takes if it is a command (for precondition messages).
    """
    t = frame.type
    spec = _COMMANDS.get(t)
    if spec is not None:
        return _command(spec, frame, rules, command_index)
    if t == T.PROPOSE_RUN_COMPLETION:
        proposal: pb.ProposeRunCompletionMessage = _parse(pb.ProposeRunCompletionMessage, frame)
        if not proposal.HasField("result"):
            raise _violation("malformed ProposeRunCompletionMessage, missing result field")
        return Kind.RUN_PROPOSAL
    if t == T.END:
        _parse(pb.EndMessage, frame)
        return Kind.END
    if t == T.SUSPENSION:
        return _suspension(frame, rules)
    if t == T.ERROR:
        return _error(frame)
    if t == T.AWAITING_ON and rules.protocol_version >= 7:
        awaiting: pb.AwaitingOnMessage = _parse(pb.AwaitingOnMessage, frame)
        if not awaiting.HasField("awaiting_on"):
            raise _violation("got empty AwaitingOnMessage")
        return Kind.AWAITING_ON
    # Start and the acks go the other way, notifications are the server's to write, AwaitingOn
    # needs V7, and codes no protocol version defines (upstream's "custom" range) are not accepted
    raise _violation(f"received unexpected message: {message_name(t)} (protocol v{rules.protocol_version})")
