"""Invocation management: cancel, kill, purge, purge-journal, restart-as-new, resume and pause.

Each action is a record appended to the invocation's partition log; the processor applies it and
answers with a verdict (``ok``, ``not_found``, ``completed``, ``not_completed``), which is mapped
here to upstream's statuses and messages. Nothing is acknowledged before the record is durable.
The deprecated ``DELETE /invocations/{id}?mode=`` only waits for the append, as upstream does.
"""

from __future__ import annotations

import time

from aiohttp import web

from restate_server.admin import app as admin_app, errors
from restate_server.ids import IdError, InvocationId
from restate_server.log import records
from restate_server.storage.status import Status
from restate_server.worker.actions import Outcome
from restate_server.worker.api import WorkerHandle

_MODE_SPELLINGS = frozenset({"Cancel", "cancel", "Kill", "kill", "Purge", "purge"})  # as upstream's serde


def register(routes: admin_app.AdminRoutes) -> None:
    """Add the invocation-management routes."""
    from restate_server.admin import restart  # it builds on this module's helpers

    routes.add("PATCH", "/invocations/{invocation_id}/cancel", cancel)
    routes.add("PATCH", "/invocations/{invocation_id}/kill", kill)
    routes.add("PATCH", "/invocations/{invocation_id}/purge", purge)
    routes.add("PATCH", "/invocations/{invocation_id}/purge-journal", purge_journal)
    routes.add("PATCH", "/invocations/{invocation_id}/restart-as-new", restart.restart_as_new)
    routes.add("PATCH", "/invocations/{invocation_id}/resume", resume)
    routes.add("PATCH", "/invocations/{invocation_id}/pause", pause)
    routes.add("DELETE", "/invocations/{invocation_id}", delete)


def target(request: web.Request) -> tuple[WorkerHandle, InvocationId]:
    """The worker and the ``{invocation_id}`` of the request (400 if malformed, 503 without a worker)."""
    try:
        invocation_id = InvocationId.parse(request.match_info["invocation_id"])
    except IdError as e:
        raise errors.invalid_field("invocation_id", str(e)) from e
    worker = admin_app.context(request).worker
    if worker is None:
        raise errors.AdminError(503, "Error when routing the request internally. Reason: no worker")
    return worker, invocation_id


def now() -> int:
    """The wall clock in milliseconds: the time a record carries."""
    return int(time.time() * 1000)


def not_found(inv: InvocationId) -> errors.AdminError:
    """404 for an invocation the partition does not know."""
    return errors.AdminError(404, f"The requested invocation '{inv}' does not exist")


def _already_completed(inv: InvocationId) -> errors.AdminError:
    return errors.AdminError(409, f"The invocation '{inv}' was already completed.")


async def submit(worker: WorkerHandle, inv: InvocationId, record: records.Record) -> Outcome:
    """Append the record to the invocation's partition and wait for the processor's verdict."""
    return (await worker.submit(inv.partition_key, record)).outcome


async def cancel(request: web.Request) -> web.StreamResponse:
    """Graceful cancel: 200 if it ended at once (inboxed or scheduled), 202 if signalled."""
    worker, inv = target(request)
    before = await worker.read_status(inv)
    outcome = await submit(
        worker, inv, records.Terminate(invocation_id=inv.to_bytes(), mode="cancel", now=now())
    )
    _check_terminated(outcome, inv)
    done_at_once = before is not None and before.status in (Status.INBOXED, Status.SCHEDULED)
    return web.Response(status=200 if done_at_once else 202)


async def kill(request: web.Request) -> web.StreamResponse:
    """Immediate termination without compensation."""
    worker, inv = target(request)
    outcome = await submit(
        worker, inv, records.Terminate(invocation_id=inv.to_bytes(), mode="kill", now=now())
    )
    _check_terminated(outcome, inv)
    return web.Response(status=200)


def _check_terminated(outcome: Outcome, inv: InvocationId) -> None:
    if outcome == Outcome.NOT_FOUND:
        raise not_found(inv)
    if outcome == Outcome.COMPLETED:
        raise _already_completed(inv)


async def purge(request: web.Request) -> web.StreamResponse:
    """Forget a completed invocation: status, journal, and a workflow's state and promises."""
    worker, inv = target(request)
    outcome = await submit(worker, inv, records.Purge(invocation_ids=[inv.to_bytes()], now=now()))
    if outcome == Outcome.NOT_FOUND:
        raise not_found(inv)
    if outcome == Outcome.NOT_COMPLETED:
        raise errors.AdminError(409, f"The invocation '{inv}' is not yet completed.")
    return web.Response(status=200)


async def purge_journal(request: web.Request) -> web.StreamResponse:
    """Forget a completed invocation's journal, keeping its status and result."""
    worker, inv = target(request)
    outcome = await submit(worker, inv, records.PurgeJournal(invocation_id=inv.to_bytes(), now=now()))
    if outcome == Outcome.NOT_FOUND:
        raise not_found(inv)
    if outcome == Outcome.NOT_COMPLETED:
        raise errors.AdminError(409, f"The invocation '{inv}' is not yet completed.")
    return web.Response(status=200)


async def resume(request: web.Request) -> web.StreamResponse:
    """Resume a suspended or paused invocation now (a running one is left alone)."""
    worker, inv = target(request)
    deployment = request.query.get("deployment")
    if deployment not in (None, "keep"):
        raise errors.AdminError(
            400,
            "The request query parameter 'deployment' is invalid. "
            "Reason: changing the pinned deployment is not supported by this server",
        )
    outcome = await submit(worker, inv, records.Resume(invocation_id=inv.to_bytes(), now=now()))
    if outcome == Outcome.NOT_FOUND:
        raise not_found(inv)
    if outcome == Outcome.COMPLETED:
        raise errors.AdminError(409, f"The invocation '{inv}' is completed, cannot be resumed.")
    if outcome == Outcome.NOT_COMPLETED:
        raise errors.AdminError(
            425, f"The invocation '{inv}' is either inboxed or scheduled, cannot be resumed."
        )
    return web.Response(status=200)


async def pause(request: web.Request) -> web.StreamResponse:
    """Pause a running or suspended invocation: 202 when paused now, 200 if it already was."""
    worker, inv = target(request)
    outcome = await submit(worker, inv, records.Pause(invocation_id=inv.to_bytes(), now=now()))
    if outcome == Outcome.NOT_FOUND:
        raise not_found(inv)
    if outcome == Outcome.NOT_RUNNING:
        raise errors.AdminError(409, f"The invocation '{inv}' is not running, cannot be paused.")
    return web.Response(status=200 if outcome == Outcome.ALREADY_PAUSED else 202)


async def delete(request: web.Request) -> web.StreamResponse:
    """Deprecated ``DELETE``: append the termination or purge and answer 202 whatever it finds."""
    raw_mode = request.query.get("mode", "Cancel")
    if raw_mode not in _MODE_SPELLINGS:
        raise errors.PlainTextError(
            400,
            f"Failed to deserialize query string: mode: unknown variant `{raw_mode}`, expected one of "
            "`Cancel`, `cancel`, `Kill`, `kill`, `Purge`, `purge`",
        )
    worker, inv = target(request)
    mode = raw_mode.lower()
    record: records.Record
    if mode == "purge":
        record = records.Purge(invocation_ids=[inv.to_bytes()], now=now())
    else:
        record = records.Terminate(invocation_id=inv.to_bytes(), mode=mode, now=now())
    await submit(worker, inv, record)
    return web.Response(status=202)
