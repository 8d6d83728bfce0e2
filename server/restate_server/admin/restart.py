"""``PATCH /invocations/{id}/restart-as-new``: run a completed invocation again under a new id.

``?from=N`` copies the journal up to index N (with the completions its commands received), so the
new invocation resumes after that prefix; ``?deployment=latest|keep|dp_…`` chooses the deployment
the new invocation is pinned to (default: the latest one of the service). The deployment is
resolved here, against the registry, because the state machine does not know the schema; every
other refusal comes from the state machine, which sees the invocation as the log orders it.
"""

from __future__ import annotations

from aiohttp import web

from restate_server.admin import app as admin_app, errors, invocations
from restate_server.admin.errors import json_response
from restate_server.ids import DeploymentId, IdError, InvocationId
from restate_server.log import records
from restate_server.schema.model import Deployment
from restate_server.storage.status import InvocationStatus, Status
from restate_server.worker.actions import Outcome

_KEEP = frozenset({"Keep", "keep"})
_LATEST = frozenset({"Latest", "latest"})
_U32_MAX = 2**32 - 1


def _from(request: web.Request) -> int:
    """The ``from`` query parameter as axum's ``Query`` reads a ``u32`` (plain-text 400 otherwise)."""
    raw = request.query.get("from")
    if raw is None:
        return 0
    if not raw.isdigit() or not raw.isascii():
        reason = "cannot parse integer from empty string" if raw == "" else "invalid digit found in string"
        raise errors.PlainTextError(400, f"Failed to deserialize query string: from: {reason}")
    value = int(raw)
    if value > _U32_MAX:
        raise errors.PlainTextError(
            400, "Failed to deserialize query string: from: number too large to fit in target type"
        )
    return value


def _deployment_choice(request: web.Request) -> str | None:
    """``latest`` (the default), ``keep`` (None) or a deployment id."""
    raw = request.query.get("deployment", "latest")
    if raw in _KEEP:
        return None
    if raw in _LATEST:
        return "latest"
    try:
        return str(DeploymentId.parse(raw))
    except IdError as e:
        raise errors.AdminError(400, f"The query parameter 'deployment' is invalid. Reason: {e}") from e


def _restartable(st: InvocationStatus | None) -> bool:
    """Whether the state machine would get as far as the deployment (upstream checks in that order)."""
    return (
        st is not None
        and st.status == Status.COMPLETED
        and st.journal_length > 0
        and st.service_ty != "Workflow"
    )


def _pin(
    request: web.Request, inv: InvocationId, st: InvocationStatus | None, choice: str | None
) -> str | None:
    """The deployment id the new invocation is pinned to (None: keep the old pin)."""
    if choice is None or not _restartable(st):
        return None
    assert st is not None
    registry = admin_app.context(request).registry
    deployment: Deployment | None = (
        registry.latest_deployment(st.service) if choice == "latest" else registry.deployment(choice)
    )
    if deployment is None:
        raise errors.AdminError(
            400, f"The given deployment was not found when trying to restart as new the invocation '{inv}'."
        )
    version = st.protocol_version
    if version is not None and not (
        deployment.min_protocol_version <= version <= deployment.max_protocol_version
    ):
        raise errors.AdminError(
            400,
            f"The invocation '{inv}' is running on protocol version '{version}', while the chosen deployment"
            f" '{deployment.id}' supports the range"
            f" {deployment.min_protocol_version}..={deployment.max_protocol_version}.",
        )
    return deployment.id


_REFUSALS: dict[Outcome, tuple[int, str]] = {
    Outcome.STILL_RUNNING: (409, "The invocation '{}' is still running."),
    Outcome.UNSUPPORTED: (
        422,
        "Restarting the invocation '{}' is not supported. Restarting workflows is not supported, and"
        " restarting invocations created using the old service protocol.",
    ),
    Outcome.MISSING_INPUT: (
        410,
        "The invocation '{}' cannot be restarted because the input is not available. This indicates"
        " that the journal was already purged, or not retained at all.",
    ),
    Outcome.NOT_STARTED: (425, "The invocation '{}' cannot be restarted because it's not running yet."),
    Outcome.INDEX_OUT_OF_RANGE: (
        400,
        "The given index is out of range of currently stored journal for invocation '{}'.",
    ),
    Outcome.COPY_RANGE_INVALID: (
        400,
        "The prefix of the journal '{}' up to 'from' (included) contains some Commands without"
        " respective Completions.",
    ),
}


async def restart_as_new(request: web.Request) -> web.StreamResponse:
    """200 ``{"new_invocation_id": …}``, or upstream's refusal."""
    worker, inv = invocations.target(request)
    copy_up_to = _from(request)
    pin = _pin(request, inv, await worker.read_status(inv), _deployment_choice(request))
    new_id = InvocationId.generate(inv.partition_key)
    record = records.RestartAsNew(
        invocation_id=inv.to_bytes(),
        new_invocation_id=new_id.to_bytes(),
        copy_up_to=copy_up_to,
        deployment_id=pin,
        now=invocations.now(),
    )
    outcome = await invocations.submit(worker, inv, record)
    if outcome == Outcome.OK:
        return json_response({"new_invocation_id": str(new_id)})
    if outcome == Outcome.NOT_FOUND:
        raise invocations.not_found(inv)
    status, message = _REFUSALS[outcome]
    raise errors.AdminError(status, message.format(inv))
