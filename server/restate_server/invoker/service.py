"""The invoker: one task per running invocation, retrying attempts with backoff.

Upstream splits the invoker into an invocation state machine (attempts, retries) and the
protocol runner (I/O); here `InvocationTask` is the former and `attempt.Attempt` the latter. The
invoker never writes the store: effects go to the log through `InvokerHost.propose`, and the
next attempt starts only after the previous one's effects were applied.

A proposal that fails (the log's disk is full) ends the attempt at once: what the SDK sends after
it must not be proposed as if the failed effect had landed. The invocation then backs off (not
counted against its retry policy: the failure is the server's, not the handler's) and the next
attempt replays the journal as the store has it. An unexpected crash of an invocation's task is
logged and retried the same way, so no invocation is left running with nobody attempting it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol

from restate_server import memory
from restate_server.ids import InvocationId
from restate_server.invoker import events
from restate_server.invoker.attempt import Attempt, MessageLimits, Snapshot, Transport
from restate_server.invoker.clock import Clock, LoopClock, Timer
from restate_server.invoker.errors import AttemptError
from restate_server.invoker.retry import next_delay
from restate_server.log.api import LogClosedError
from restate_server.log.records import InvokerEffect, JournalEvent, Killed, Paused
from restate_server.observability import metrics, tracing
from restate_server.protocol import protocol_pb2 as pb
from restate_server.protocol.messages import MessageType

log = logging.getLogger(__name__)

PROPOSAL_RETRY_INITIAL = 0.1  # seconds before retrying an invocation whose effects did not land ...
PROPOSAL_RETRY_MAX = 5.0  # ... doubling up to this


class InvokerHost(Protocol):
    """What the invoker needs from the partition side (implemented by the leader)."""

    def snapshot(self, partition: int, invocation_id: bytes) -> Snapshot | AttemptError | None:
        """Journal, state and deployment for a new attempt; None if the invocation is not running."""
        ...

    def propose(self, partition: int, effect: InvokerEffect) -> Awaitable[int]:
        """Append the effect to the partition's log (ordered; durable when awaited)."""
        ...

    async def wait_applied(self, partition: int, lsn: int) -> None: ...


@dataclass(slots=True)
class InvocationState:
    """In-memory status of a running invocation (upstream's `sys_invocation_state`)."""

    partition: int
    attempts: int = 0
    last_failure: str | None = None
    last_failure_code: str | None = None
    next_retry_at: float | None = None
    last_start_at: float | None = None
    in_flight: bool = False
    restart: bool = False
    attempt: Attempt | None = None
    last_proposal: asyncio.Future[int] | None = None
    # the first proposal of the current attempt that failed, and how many settles failed in a row
    failed_proposal: BaseException | None = None
    proposal_failures: int = 0
    server: str | None = None
    killed: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    # what the task decided as it ended: wait this long, then retry (armed by `Invoker._done`)
    retry_delay: float | None = None
    # set while waiting to retry: no task (and no concurrency slot) is held meanwhile
    retry_timer: Timer | None = field(default=None, repr=False)
    # the transient error last recorded in `sys_journal_events`: a repeat is not recorded again
    last_event: JournalEvent | None = None


class Invoker:
    def __init__(
        self,
        host: InvokerHost,
        transport: Transport,
        *,
        concurrency_limit: int | None = None,
        message_size_limit: int | None = None,
        message_size_warning: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.host = host
        self.transport = transport
        defaults = MessageLimits()
        self.limits = MessageLimits(
            size_limit=message_size_limit or defaults.size_limit,
            size_warning=message_size_warning or defaults.size_warning,
        )
        self.clock: Clock = clock or LoopClock()
        self.invocations: dict[bytes, InvocationState] = {}
        # At most `limit` invocations have a task; the rest wait here (with the state they were queued
        # for, so a stale entry left by an abort is recognised), costing a deque entry each, not a task
        # and a journal. An invocation backing off holds a timer, not a slot.
        self._limit = concurrency_limit or 2**31
        if concurrency_limit:
            metrics.INVOKER_CONCURRENCY_LIMIT.set(concurrency_limit)
        self._active = 0
        self._queue: deque[tuple[bytes, InvocationState]] = deque()

    def start(self, partition: int, invocation_id: bytes) -> None:
        state = self.invocations.get(invocation_id)
        if state is not None:
            if state.retry_timer is not None:  # backing off: a new reason to run retries now
                state.retry_timer.cancel()
                self._retry(invocation_id, state)
            else:
                state.restart = True  # the running task starts another attempt when this one ends
            return
        state = self.invocations[invocation_id] = InvocationState(partition)
        metrics.INVOKER_ENQUEUE.labels(str(partition)).inc()
        self._schedule(invocation_id, state)

    def _schedule(self, invocation_id: bytes, state: InvocationState) -> None:
        if self._active < self._limit:
            self._spawn(invocation_id, state)
        else:
            self._queue.append((invocation_id, state))

    def _retry(self, invocation_id: bytes, state: InvocationState) -> None:
        state.retry_timer = None
        state.next_retry_at = None
        if self.invocations.get(invocation_id) is state:  # not aborted meanwhile
            self._schedule(invocation_id, state)

    def _spawn(self, invocation_id: bytes, state: InvocationState) -> None:
        self._active += 1
        state.task = asyncio.get_running_loop().create_task(
            self._run(invocation_id, state), name=f"invocation-{invocation_id.hex()[:12]}"
        )
        # a done callback, not a finally: a task cancelled before its first step never runs its body
        state.task.add_done_callback(lambda _task: self._done(invocation_id, state))

    def _done(self, invocation_id: bytes, state: InvocationState) -> None:
        """The task ended: run again, back off, or forget the invocation; then fill the free slot.

        Deciding here, after the task is gone, means a retry timer never fires while its task still
        holds the slot, and a start that arrived while the task was running is never lost.
        """
        state.task = None
        self._active -= 1
        delay, state.retry_delay = state.retry_delay, None
        if self.invocations.get(invocation_id) is state:
            if state.restart:
                # a start arrived between the task's last check and its end: run again, now
                self._schedule(invocation_id, state)
            elif delay is not None:
                # the slot is free meanwhile; a timer brings the invocation back
                state.next_retry_at = self.clock.time() + delay
                state.retry_timer = self.clock.call_later(delay, lambda: self._retry(invocation_id, state))
            else:
                del self.invocations[invocation_id]
        while self._queue and self._active < self._limit:
            queued, queued_state = self._queue.popleft()
            if self.invocations.get(queued) is queued_state:  # not aborted meanwhile
                self._spawn(queued, queued_state)

    def notify(
        self,
        invocation_id: bytes,
        journal_index: int,
        type_: int,
        payload: bytes,
        ack_completion_id: int | None,
    ) -> None:
        state = self.invocations.get(invocation_id)
        if state is not None and state.attempt is not None:
            state.attempt.push(journal_index, type_, payload, ack_completion_id)

    def abort(self, invocation_id: bytes) -> None:
        state = self.invocations.pop(invocation_id, None)
        if state is None:
            return
        state.killed = True
        if state.retry_timer is not None:
            state.retry_timer.cancel()
        if state.attempt is not None:
            state.attempt.abort()
        if state.task is not None:
            state.task.cancel()

    async def close(self) -> None:
        states = list(self.invocations.values())
        self.invocations.clear()  # first: ending tasks then find nothing to retry or restart
        self._queue.clear()
        tasks = []
        for state in states:
            state.killed = True
            if state.retry_timer is not None:
                state.retry_timer.cancel()
            if state.task is not None:
                state.task.cancel()
                tasks.append(state.task)
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.transport.close()

    async def _run(self, invocation_id: bytes, state: InvocationState) -> None:
        try:
            delay = await self._attempts(invocation_id, state)
        except asyncio.CancelledError:
            raise
        except LogClosedError:
            return  # the node is shutting down; the next start resumes the invocation
        except Exception as exc:
            log.exception("invocation %s: its task crashed; retrying", invocation_id.hex()[:12])
            delay = self._no_progress(state, AttemptError("RT0006", f"internal error: {exc!r}"))
        state.retry_delay = delay

    async def _attempts(self, invocation_id: bytes, state: InvocationState) -> float | None:
        """Attempts until the invocation ends or suspends (None) or must back off (the delay)."""
        while not state.killed:
            unsettled = await self._settle(state)
            if unsettled is not None:
                return self._no_progress(state, unsettled)
            state.restart = False
            snap = self.host.snapshot(state.partition, invocation_id)
            if snap is None:
                return None
            if isinstance(snap, AttemptError):
                error: AttemptError | None = snap
            else:
                snap.retry_count = state.attempts
                error = await self._one_attempt(invocation_id, state, snap)
                unsettled = await self._settle(state)
                if unsettled is not None:
                    return self._no_progress(state, unsettled)
            if error is None:
                if state.restart:
                    continue
                return None
            assert error is not None
            state.attempts += 1
            state.last_failure, state.last_failure_code = error.message, error.code
            log.info(
                "invocation %s attempt %d failed: %s",
                InvocationId.from_bytes(invocation_id),
                state.attempts,
                error,
            )
            if isinstance(snap, Snapshot):
                delay = next_delay(snap.options.retry, state.attempts, error.retry_after)
                if delay is None or error.behavior in (1, 2):
                    _count_task(metrics.TASK_FAILED, state.partition, transient=False)
                    self._give_up(invocation_id, state, snap, error)
                    continue  # once the terminal effect is applied the snapshot is None: stop
            else:
                delay = 1.0
            self._record_transient(invocation_id, state, error)
            _count_task(metrics.TASK_FAILED, state.partition, transient=True)
            return delay
        return None

    def _record_transient(self, invocation_id: bytes, state: InvocationState, error: AttemptError) -> None:
        """Propose the failure as a journal event, unless it repeats the last one (as upstream)."""
        event = events.transient_error(error)
        if event == state.last_event:
            return
        state.last_event = event
        effect = InvokerEffect(
            invocation_id=invocation_id,
            first_command_index=0,
            entries=[],
            now=int(self.clock.time() * 1000),
            event=event,
        )
        self._propose(state, state.partition, effect)

    async def _settle(self, state: InvocationState) -> AttemptError | None:
        """Wait until the attempt's last effect is applied; the error if any of its effects failed."""
        proposal, state.last_proposal = state.last_proposal, None
        lsn = None
        if proposal is not None:
            try:
                lsn = await proposal
            except LogClosedError:
                raise
            except Exception as exc:
                state.failed_proposal = state.failed_proposal or exc
        failed, state.failed_proposal = state.failed_proposal, None
        if failed is not None:
            if isinstance(failed, LogClosedError):
                raise failed
            return AttemptError("RT0006", f"the attempt's effects could not be appended to the log: {failed}")
        if lsn is not None:
            await self.host.wait_applied(state.partition, lsn)
            state.proposal_failures = 0  # the log takes appends again
        return None

    def _no_progress(self, state: InvocationState, error: AttemptError) -> float:
        """Back off after a failure of the server's own (not counted against the retry policy)."""
        state.proposal_failures += 1
        state.last_failure, state.last_failure_code = error.message, error.code
        delay = min(PROPOSAL_RETRY_INITIAL * 2 ** (state.proposal_failures - 1), PROPOSAL_RETRY_MAX)
        log.warning("invocation retrying in %.1fs: %s", delay, error)
        return float(delay)

    def _propose(self, state: InvocationState, partition: int, effect: InvokerEffect) -> None:
        """Propose an effect; if it fails, the attempt it came from must not go on as if it had landed."""
        proposal = asyncio.ensure_future(self.host.propose(partition, effect))
        state.last_proposal = proposal

        def landed(future: asyncio.Future[int]) -> None:
            error = None if future.cancelled() else future.exception()
            if error is None or state.failed_proposal is not None:
                return
            state.failed_proposal = error
            if state.attempt is not None:
                state.attempt.abort(
                    AttemptError("RT0006", f"appending the attempt's effects failed: {error}")
                )

        proposal.add_done_callback(landed)

    def _give_up(
        self, invocation_id: bytes, state: InvocationState, snap: Snapshot, error: AttemptError
    ) -> None:
        pause = error.behavior == 1 or (snap.options.retry.on_max_attempts == "pause" and error.behavior != 2)
        terminal = (
            Paused(code=500, message=error.message) if pause else Killed(code=500, message=error.message)
        )
        effect = InvokerEffect(
            invocation_id=invocation_id,
            first_command_index=snap.commands,
            entries=[],
            terminal=terminal,
            now=int(self.clock.time() * 1000),
            event=events.paused(error) if pause else None,
        )
        self._propose(state, snap.partition, effect)

    async def _one_attempt(
        self, invocation_id: bytes, state: InvocationState, snap: Snapshot
    ) -> AttemptError | None:
        def propose(effect: InvokerEffect) -> None:
            self._propose(state, snap.partition, effect)

        attempt = Attempt(snap, self.transport, propose, limits=self.limits, clock=self.clock)
        state.attempt = attempt
        state.in_flight = True
        state.last_start_at = self.clock.time()
        _count_task(metrics.TASK_STARTED, state.partition)
        started = time.perf_counter()
        traced = _Traced.start(snap, attempt, state.attempts + 1) if tracing.TRACER is not None else None
        try:
            outcome = await attempt.run()
            _count_task(
                metrics.TASK_COMPLETED if outcome.kind == "end" else metrics.TASK_SUSPENDED, state.partition
            )
            if traced is not None:
                traced.end(None, invocation_ended=outcome.kind == "end")
            return None
        except AttemptError as exc:
            if traced is not None:
                traced.end(exc, invocation_ended=False)
            return exc
        finally:
            metrics.INVOKER_TASK_DURATION.observe(time.perf_counter() - started)
            state.server = attempt.server_header
            state.in_flight = False
            state.attempt = None
            if attempt.large_messages or snap.journal_bytes > self.limits.size_warning:
                memory.trim_soon()  # megabytes of message buffers are about to be freed
            # the next attempt reads a fresh snapshot; whatever still refers to this attempt (a
            # timer not yet due, a connection's last stream) must not keep the journal alive
            snap.journal.clear()


@dataclass(slots=True)
class _Traced:
    """An attempt's span (and what ending the invocation's span needs), while tracing is on."""

    tracer: tracing.Tracer
    target: tracing.Target
    parent: tracing.Parent | None
    created_at: int
    span: tracing.Span

    @classmethod
    def start(cls, snap: Snapshot, attempt: Attempt, number: int) -> _Traced | None:
        tracer = tracing.TRACER
        assert tracer is not None
        parent = _invocation_parent(snap)
        if parent is not None and not parent.sampled:
            return None  # the caller chose not to sample this trace
        invocation = InvocationId.from_bytes(snap.invocation_id)
        target = tracing.Target(
            invocation_id=str(invocation),
            uuid=invocation.uuid,
            service=snap.service,
            handler=snap.handler,
            key=snap.key if snap.keyed else None,
        )
        span = tracer.start_attempt(target, parent, number)
        attempt.trace_headers = [("traceparent", tracing.header_of(span).header())]
        return cls(tracer, target, parent, snap.created_at, span)

    def end(self, error: AttemptError | None, *, invocation_ended: bool) -> None:
        if error is not None:
            self.span.set_status(tracing.StatusCode.ERROR, f"[{error.code}] {error.message}")
        self.span.end()
        if invocation_ended:
            self.tracer.end_invocation(self.target, self.parent, self.created_at)


def _invocation_parent(snap: Snapshot) -> tracing.Parent | None:
    """The `traceparent` among the invocation's headers, journaled with its input."""
    if not snap.journal or snap.journal[0].type != MessageType.INPUT_COMMAND:
        return None
    message = pb.InputCommandMessage.FromString(snap.journal[0].payload)
    return tracing.find_traceparent((h.key, h.value) for h in message.headers)


def _count_task(status: str, partition: int, *, transient: bool | None = None) -> None:
    flag = "" if transient is None else ("true" if transient else "false")
    metrics.INVOKER_INVOCATION_TASKS.labels(status, flag, str(partition)).inc()
