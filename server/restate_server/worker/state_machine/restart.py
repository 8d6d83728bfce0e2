"""Restart as new: a completed invocation's input, and optionally a prefix of its journal, start again.

The new invocation has its own id (chosen by the requester, so every replay creates the same one),
the same target, headers and retention, `invoked_by = restart_as_new` and the old id as
`restarted_from`. With `copy_up_to > 0` the journal up to that index is copied, plus the later
completions of the commands it holds, so the SDK replays that prefix and carries on after it.
Every refusal upstream gives (`RestartAsNewInvocationResponse`) is decided here, from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from restate_server.log.records import RestartAsNew, Source
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.codec import Frame
from restate_server.protocol.messages import MESSAGE_CLASSES, MessageType as T, is_command, is_notification
from restate_server.protocol.notifications import command_completion_id, invocation_id_notification_idx
from restate_server.storage import journal
from restate_server.storage.journal import JournalEntry
from restate_server.storage.status import InvocationStatus, Status
from restate_server.worker import actions as act
from restate_server.worker.state_machine import lifecycle
from restate_server.worker.state_machine.context import Context

_FROM_PREFIX_MIN_PROTOCOL = 6  # below V6 the random seed is not the SDK's, so a prefix would not replay


def restart_as_new(ctx: Context, record: RestartAsNew) -> None:
    """Apply the record and answer the waiting request (the new id with `OK`)."""
    old = ctx.status(record.invocation_id)
    refusal = _refusal(ctx, record, old)
    if refusal is None:
        assert old is not None
        _start_copy(ctx, record, old)
    if record.submit_request is not None:
        ctx.emit(
            act.SubmitOutcome(
                request_id=record.submit_request,
                outcome=refusal or act.Outcome.OK,
                invocation_id=record.new_invocation_id if refusal is None else record.invocation_id,
            )
        )


def _refusal(ctx: Context, record: RestartAsNew, old: InvocationStatus | None) -> act.Outcome | None:
    """Why the invocation cannot be restarted, checked in upstream's order; None if it can."""
    if old is None:
        return act.Outcome.NOT_FOUND
    if old.status in (Status.INBOXED, Status.SCHEDULED):
        return act.Outcome.NOT_STARTED
    if old.status != Status.COMPLETED:
        return act.Outcome.STILL_RUNNING
    if old.journal_length == 0:
        return act.Outcome.MISSING_INPUT
    if old.service_ty == "Workflow":
        return act.Outcome.UNSUPPORTED
    if record.copy_up_to > 0 and (old.protocol_version or 0) < _FROM_PREFIX_MIN_PROTOCOL:
        return act.Outcome.UNSUPPORTED
    entries = journal.read(ctx.txn, ctx.partition, record.invocation_id)
    for entry in entries[1 : record.copy_up_to + 1]:
        if is_command(entry.type) and not set(_awaited(entry)) <= set(old.completed_ids):
            return act.Outcome.COPY_RANGE_INVALID
    if record.copy_up_to >= len(entries):
        return act.Outcome.COPY_RANGE_INVALID  # upstream finds the missing entry first
    return None


def _awaited(entry: JournalEntry) -> list[int]:
    """The completion ids a command waits for (its result and, for calls, the callee's id)."""
    frame = Frame(entry.type, entry.flags, entry.payload)
    ids = [command_completion_id(frame), invocation_id_notification_idx(frame)]
    return [i for i in ids if i is not None]


@dataclass(slots=True)
class _Copy:
    """What the copied journal holds, for the new invocation's status."""

    entries: list[JournalEntry] = field(default_factory=list)
    commands: int = 0
    completed_ids: list[int] = field(default_factory=list)
    signal_ids: list[int] = field(default_factory=list)
    signal_names: list[str] = field(default_factory=list)

    def add(self, entry: JournalEntry) -> None:
        self.entries.append(entry)
        if is_command(entry.type):
            self.commands += 1
        elif entry.type == T.SIGNAL_NOTIFICATION:
            signal = pb.SignalNotificationMessage.FromString(entry.payload)
            if signal.WhichOneof("signal_id") == "idx":
                self.signal_ids.append(signal.idx)
            else:
                self.signal_names.append(signal.name)
        elif (completion := _completion_id(entry)) is not None:
            self.completed_ids.append(completion)


def _completion_id(entry: JournalEntry) -> int | None:
    if not is_notification(entry.type) or entry.type == T.SIGNAL_NOTIFICATION:
        return None
    cls = MESSAGE_CLASSES.get(entry.type)
    return None if cls is None else int(cls.FromString(entry.payload).completion_id)  # type: ignore[attr-defined]


def _copied(ctx: Context, record: RestartAsNew) -> _Copy:
    """The prefix up to `copy_up_to`, then the later completions its commands still miss."""
    copy = _Copy()
    missing: set[int] = set()
    for index, entry in enumerate(journal.read(ctx.txn, ctx.partition, record.invocation_id)):
        if index <= record.copy_up_to:
            copy.add(entry)
            if is_command(entry.type):
                missing.update(_awaited(entry))
            elif (completion := _completion_id(entry)) is not None:
                missing.discard(completion)
        elif not missing:
            break
        elif (completion := _completion_id(entry)) in missing:
            copy.add(entry)
            missing.discard(completion)
    return copy


def _start_copy(ctx: Context, record: RestartAsNew, old: InvocationStatus) -> None:
    copy = _copied(ctx, record)
    new = record.new_invocation_id
    st = InvocationStatus(
        status=Status.FREE,
        service=old.service,
        handler=old.handler,
        key=old.key,
        service_ty=old.service_ty,
        handler_ty=old.handler_ty,
        created_at=ctx.now,
        modified_at=ctx.now,
        source=Source(kind="restart_as_new", caller_id=record.invocation_id).to_wire(),
        completion_retention=old.completion_retention,
        journal_retention=old.journal_retention,
        commands=copy.commands,
        completed_ids=copy.completed_ids,
        signal_ids=copy.signal_ids,
        signal_names=copy.signal_names,
        deployment_id=record.deployment_id or old.deployment_id,
        protocol_version=old.protocol_version if (record.deployment_id or old.deployment_id) else None,
    )
    for entry in copy.entries:
        ctx.append_entry(new, st, entry.type, entry.flags, entry.payload)
    lifecycle.start_or_enqueue(ctx, new, st)
    if st.status == Status.INVOKED and st.deployment_id is not None:
        st.running_at = ctx.now  # pinned already: its first attempt will not announce a pin
        ctx.save(new, st)
