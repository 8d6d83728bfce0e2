"""Which versions of a RestateDeployment to keep, drain, retire or delete: pure decisions.

A *version* is one ReplicaSet (and its Service) named ``<rsd>-<hash>``. Its life:

``live`` (registered, serving) → *unused* (neither the latest deployment for any of its services nor
holding unfinished invocations) → ``draining`` (``remove-version-at`` = now + ``drainDelaySeconds``)
→ ``retired`` (deregistered with force, scaled to 0, kept for rollback) → deleted once more than
``revisionHistoryLimit`` retired versions exist.

Deregistration happens *when* a version is scaled to zero, never later: a registered deployment with no
endpoints would keep receiving invocations (upstream restate-operator #137). "Latest for a service" and
"has unfinished invocations" are separate facts (#172, #176): while the resource is being deleted the
first one no longer holds a version, only unfinished work does, and work not yet pinned to a deployment
is attributed through its target service. Unknown invocation counts mean "in use".

No I/O and no clock here: the caller passes ``now`` and the admin view, and executes the decisions.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from restate_operator.admin_client import AdminView
from restate_operator.models import DeletionPolicy


class Step(enum.Enum):
    """What to do with one version in this reconcile."""

    KEEP = "keep"
    """In use (or the current version): leave it serving; clear a pending drain."""
    SCHEDULE_DRAIN = "schedule-drain"
    """Unused: stamp ``remove-version-at``."""
    WAIT = "wait"
    """Draining and the time has not come."""
    RETIRE = "retire"
    """Deregister (if registered), scale to 0, drop the deployment id."""
    DELETE = "delete"
    """Retired and beyond the history limit: delete the ReplicaSet (its Service goes with it)."""
    NOTHING = "nothing"
    """Retired and within the history limit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Version:
    """The state of one version as read from its ReplicaSet."""

    name: str
    created: datetime
    replicas: int
    deployment_id: str | None = None
    remove_at: datetime | None = None

    @property
    def retired(self) -> bool:
        return self.replicas == 0 and self.deployment_id is None


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """A step for a version; ``remove_at`` is set for ``SCHEDULE_DRAIN``."""

    version: Version
    step: Step
    remove_at: datetime | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The parts of the spec that drive planning."""

    drain_delay: timedelta
    history_limit: int
    deleting_since: datetime | None = None
    """When set, the resource is being deleted: every version must end retired."""
    deletion_policy: DeletionPolicy = DeletionPolicy.DRAIN
    delete_timeout: timedelta = timedelta(hours=1)


def in_use(version: Version, view: AdminView, *, deleting: bool) -> str | None:
    """Why ``version`` cannot be drained yet, or ``None`` if nothing holds it."""
    dp = version.deployment_id
    if dp is None:
        return None
    if not deleting and dp in view.latest_ids:
        return "latest deployment for a service"
    if view.invocations is None:
        return "unfinished invocations unknown (admin /query unavailable)"
    pinned = view.invocations.pinned.get(dp, 0)
    if pinned:
        return f"{pinned} unfinished invocation(s) pinned"
    deployment = view.deployments.get(dp)
    if deployment is not None and dp in view.latest_ids:
        unpinned = sum(
            view.invocations.unpinned.get(svc, 0)
            for svc in deployment.services
            if view.latest_for.get(svc) == dp
        )
        if unpinned:
            return f"{unpinned} unfinished invocation(s) not yet pinned"
    return None


def _forced(policy: Policy, now: datetime) -> bool:
    if policy.deleting_since is None:
        return False
    match policy.deletion_policy:
        case DeletionPolicy.FORCE:
            return True
        case DeletionPolicy.DRAIN_THEN_FORCE:
            return now >= policy.deleting_since + policy.delete_timeout
        case DeletionPolicy.DRAIN:
            return False


def plan(
    versions: Iterable[Version],
    *,
    current: str | None,
    view: AdminView,
    now: datetime,
    policy: Policy,
) -> list[Decision]:
    """Decide a step for every version, newest first. ``current`` is the version the spec asks for."""
    deleting = policy.deleting_since is not None
    forced = _forced(policy, now)
    decisions: list[Decision] = []
    retired_kept = 0
    for version in sorted(versions, key=lambda v: v.created, reverse=True):
        if version.name == current and not deleting:
            decisions.append(Decision(version=version, step=Step.KEEP, reason="current version"))
            continue
        if version.retired:
            if deleting or retired_kept >= policy.history_limit:
                decisions.append(Decision(version=version, step=Step.DELETE, reason="beyond history"))
            else:
                retired_kept += 1
                decisions.append(Decision(version=version, step=Step.NOTHING, reason="kept for rollback"))
            continue
        decisions.append(_plan_live(version, view=view, now=now, policy=policy, forced=forced))
    return decisions


def _plan_live(version: Version, *, view: AdminView, now: datetime, policy: Policy, forced: bool) -> Decision:
    deleting = policy.deleting_since is not None
    if forced:
        return Decision(version=version, step=Step.RETIRE, reason=f"deletion policy {policy.deletion_policy}")
    if version.deployment_id is None:
        return Decision(version=version, step=Step.RETIRE, reason="never registered")
    holder = in_use(version, view, deleting=deleting)
    if holder is not None:
        return Decision(version=version, step=Step.KEEP, reason=holder)
    if deleting:
        return Decision(version=version, step=Step.RETIRE, reason="unused; resource deleted")
    if version.remove_at is None:
        return Decision(
            version=version, step=Step.SCHEDULE_DRAIN, remove_at=now + policy.drain_delay, reason="unused"
        )
    if now < version.remove_at:
        return Decision(
            version=version, step=Step.WAIT, reason=f"draining until {version.remove_at.isoformat()}"
        )
    return Decision(version=version, step=Step.RETIRE, reason="drained")


def needs_registration(version: Version, view: AdminView) -> tuple[bool, bool]:
    """Whether the current version must be (re-)registered, and whether with ``force``.

    Unregistered → register. Registered but unknown to the server (removed behind the operator's back) →
    register again. Registered but no longer the latest for one of its services (a rollback to a version
    that a newer one superseded) → register again with ``force`` so it becomes the latest again.
    """
    dp = version.deployment_id
    if dp is None:
        return True, False
    deployment = view.deployments.get(dp)
    if deployment is None:
        return True, False
    superseded = any(view.latest_for.get(svc) != dp for svc in deployment.services)
    return superseded, superseded


def blocking(decisions: Sequence[Decision]) -> list[Decision]:
    """Decisions that keep a deletion from finishing (versions not yet retired)."""
    return [d for d in decisions if d.step in (Step.KEEP, Step.SCHEDULE_DRAIN, Step.WAIT)]


def next_check(decisions: Sequence[Decision], now: datetime) -> datetime | None:
    """The earliest drain deadline among the decisions, if any."""
    times = [
        d.remove_at or d.version.remove_at for d in decisions if d.step in (Step.SCHEDULE_DRAIN, Step.WAIT)
    ]
    future = [t for t in times if t is not None and t > now]
    return min(future) if future else None
