"""RestateDeployment controller: one ReplicaSet + Service per template hash, registered, drained, retired.

The handlers are thin: :func:`reconcile` parses the spec, renders and applies the current version, asks
the admin API what is in use, lets :mod:`restate_operator.versions` decide, and carries the decisions out.
Per-version state lives in annotations on the ReplicaSets (``restate.dev/deployment-id``,
``restate.dev/remove-version-at``), so a restarted operator resumes where it stopped. A timer re-runs the
reconcile, which is how drains progress and drift (a deregistered version, a deleted Service) heals.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import kopf

from restate_operator import common, names, versions
from restate_operator.admin_client import AdminClient, AdminError, AdminView
from restate_operator.hashing import template_hash
from restate_operator.models import DEPLOYMENT_VERSION, GROUP, DeploymentSpec, JsonObject, SpecError
from restate_operator.render import render_autoscaler, render_version, restate_port, version_selector
from restate_operator.settings import SETTINGS

PLURAL = "restatedeployments"
RS = ("apps/v1", "ReplicaSet")
SVC = ("v1", "Service")
logger = logging.getLogger(__name__)


def version_hash(spec: DeploymentSpec, collision_count: int) -> str:
    """The hash naming the version the spec asks for."""
    return template_hash(
        spec.template,
        register_target=spec.register.target,
        service_path=spec.service_path,
        use_http11=spec.use_http11,
        collision_count=collision_count,
    )


def admin_url(spec: DeploymentSpec) -> str:
    """Where this deployment's versions are registered."""
    register = spec.register
    if register.cluster:
        return common.cluster_admin_url(register.cluster)
    if register.service_name:
        namespace = register.service_namespace or spec.namespace
        return (
            f"http://{register.service_name}.{namespace}.svc.{SETTINGS.cluster_dns}:{register.service_port}"
            f"{register.service_path}"
        )
    return register.url or ""


def service_url(spec: DeploymentSpec, vhash: str) -> str:
    """The URI the Restate server calls for one version (``RESTATE_OPERATOR_SERVICE_URL_TEMPLATE``)."""
    template = SETTINGS.service_url_template
    pod_ip = (
        common.ready_pod_ip(spec.namespace, version_selector(spec, vhash)) if "{pod_ip}" in template else ""
    )
    base = template.format(
        name=f"{spec.name}-{vhash}",
        namespace=spec.namespace,
        dns=SETTINGS.cluster_dns,
        port=restate_port(spec.template),
        hash=vhash,
        deployment=spec.name,
        pod_ip=pod_ip,
    )
    return f"{base.rstrip('/')}/{spec.service_path}" if spec.service_path else base


def to_version(rs: Mapping[str, Any]) -> versions.Version:
    """Read a version's state from its ReplicaSet."""
    meta, annotations = rs["metadata"], rs["metadata"].get("annotations") or {}
    return versions.Version(
        name=meta["name"],
        created=common.parse_time(meta.get("creationTimestamp")) or common.utcnow(),
        replicas=int((rs.get("spec") or {}).get("replicas", 0) or 0),
        deployment_id=annotations.get(names.DEPLOYMENT_ID) or None,
        remove_at=common.parse_time(annotations.get(names.REMOVE_VERSION_AT)),
    )


def rs_ready(rs: Mapping[str, Any]) -> bool:
    """All desired replicas of a version are ready (and there is at least one)."""
    desired = int((rs.get("spec") or {}).get("replicas", 0) or 0)
    status = rs.get("status") or {}
    observed, generation = status.get("observedGeneration"), rs["metadata"].get("generation")
    if observed is not None and generation is not None and observed < generation:
        return False  # the status predates the last scale (e.g. a rollback scaling a retired version up)
    return desired > 0 and int(status.get("readyReplicas", 0) or 0) >= desired


def _annotate(namespace: str, name: str, annotations: Mapping[str, str | None], **spec: Any) -> None:
    patch: JsonObject = {"metadata": {"annotations": dict(annotations)}}
    if spec:
        patch["spec"] = spec
    common.kube().patch(*RS, namespace, name, patch)
    if names.DEPLOYMENT_ID in annotations:
        try:
            common.kube().patch(
                *SVC,
                namespace,
                name,
                {"metadata": {"annotations": {names.DEPLOYMENT_ID: annotations[names.DEPLOYMENT_ID]}}},
            )
        except Exception as exc:
            logger.debug("cannot annotate service %s/%s: %s", namespace, name, exc)


def execute(
    namespace: str, decision: versions.Decision, admin: AdminClient | None, body: kopf.Body
) -> JsonObject | None:
    """Carry out one planning decision; returns the version's summary for status (``None`` once deleted)."""
    version = decision.version
    summary: JsonObject | None = {
        "name": version.name,
        "deploymentId": version.deployment_id,
        "step": decision.step.value,
        "reason": decision.reason,
    }
    match decision.step:
        case versions.Step.KEEP if version.remove_at is not None:
            _annotate(namespace, version.name, {names.REMOVE_VERSION_AT: None})
        case versions.Step.SCHEDULE_DRAIN:
            assert decision.remove_at is not None
            _annotate(namespace, version.name, {names.REMOVE_VERSION_AT: common.rfc3339(decision.remove_at)})
        case versions.Step.RETIRE:
            if version.deployment_id and admin is not None:
                admin.deregister(version.deployment_id)
                common.event(body, reason="Deregistered", message=f"{version.name}: {version.deployment_id}")
            summary = {**(summary or {}), "deploymentId": None}
            _annotate(
                namespace,
                version.name,
                {names.DEPLOYMENT_ID: None, names.REMOVE_VERSION_AT: None},
                replicas=0,
            )
        case versions.Step.DELETE:
            common.kube().delete(*RS, namespace, version.name)
            summary = None
        case _:
            pass
    return summary


_SERVING = (versions.Step.KEEP, versions.Step.SCHEDULE_DRAIN, versions.Step.WAIT)
HPA = ("autoscaling/v2", "HorizontalPodAutoscaler")


def sync_autoscalers(
    spec: DeploymentSpec,
    replicasets: list[JsonObject],
    decisions: list[versions.Decision],
    current: str | None,
) -> None:
    """Keep an autoscaler on every older version still serving; remove it before the version retires.

    The current version has none: users scale it through the resource's scale subresource.
    """
    steps = {d.version.name: d.step for d in decisions}
    for rs in replicasets:
        name = rs["metadata"]["name"]
        wanted = spec.autoscaling is not None and name != current and steps.get(name) in _SERVING
        has = (rs["metadata"].get("annotations") or {}).get(names.AUTOSCALED) == "true"
        if wanted:
            hpa = render_autoscaler(spec, name)
            hpa["metadata"]["ownerReferences"] = [common.owner_reference({**rs, **RS_TYPE})]
            common.kube().apply(hpa)
            if not has:
                _annotate(spec.namespace, name, {names.AUTOSCALED: "true"})
        elif has:
            common.kube().delete(*HPA, spec.namespace, name)
            _annotate(spec.namespace, name, {names.AUTOSCALED: None})


def label_latest(namespace: str, replicasets: list[JsonObject], current: str | None) -> None:
    """Set ``restate.dev/latest`` on each version's ReplicaSet, pod template, Service and pods."""
    for rs in replicasets:
        name, labels = rs["metadata"]["name"], rs["metadata"].get("labels") or {}
        value = "true" if name == current else "false"
        if labels.get(names.LATEST) == value:
            continue
        patch = {"metadata": {"labels": {names.LATEST: value}}}
        common.kube().patch(*RS, namespace, name, {**patch, "spec": {"template": patch}})
        try:
            common.kube().patch(*SVC, namespace, name, patch)
        except Exception as exc:
            logger.debug("cannot label service %s/%s: %s", namespace, name, exc)
        selector = (rs.get("spec") or {}).get("selector", {}).get("matchLabels") or {}
        for pod in common.kube().list("v1", "Pod", namespace, selector):
            common.kube().patch("v1", "Pod", namespace, pod["metadata"]["name"], patch)


def ensure_current(spec: DeploymentSpec, body: kopf.Body, vhash: str) -> JsonObject:
    """Apply the current version's ReplicaSet and Service; a foreign object of the same name is a collision."""
    replicaset, service = render_version(spec, vhash, latest=True)
    existing = common.kube().get(*RS, spec.namespace, replicaset["metadata"]["name"])
    if existing is not None:
        same_template = (existing["metadata"].get("annotations") or {}).get(names.POD_TEMPLATE) == (
            replicaset["metadata"]["annotations"][names.POD_TEMPLATE]
        )
        if not same_template or not common.owned(existing, body.meta["uid"]):
            raise HashCollision(replicaset["metadata"]["name"])
    replicaset["metadata"]["ownerReferences"] = [common.owner_reference(body)]
    applied = common.kube().apply(replicaset)
    service["metadata"]["ownerReferences"] = [common.owner_reference({**applied, **RS_TYPE})]
    common.kube().apply(service)
    return applied


RS_TYPE = {"apiVersion": "apps/v1", "kind": "ReplicaSet"}


class HashCollision(Exception):
    """A ReplicaSet with the version's name exists but is not this version."""


def status_of(
    spec: DeploymentSpec, body: kopf.Body, current: JsonObject | None, vhash: str, message: str, ready: bool
) -> JsonObject:
    """A Deployment-like status for the resource, from the current version's ReplicaSet."""
    rs_status = (current or {}).get("status") or {}
    annotations = ((current or {}).get("metadata") or {}).get("annotations") or {}
    available = int(rs_status.get("availableReplicas", 0) or 0)
    selector = version_selector(spec, vhash)
    now = common.utcnow()
    previous = (body.get("status") or {}).get("conditions")
    return {
        "replicas": int(rs_status.get("replicas", 0) or 0),
        "desiredReplicas": spec.replicas,
        "readyReplicas": int(rs_status.get("readyReplicas", 0) or 0),
        "availableReplicas": available,
        "unavailableReplicas": max(spec.replicas - available, 0),
        "labelSelector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
        "deploymentId": annotations.get(names.DEPLOYMENT_ID),
        "observedGeneration": body.meta.get("generation"),
        "conditions": [
            common.condition(
                previous,
                type_="Ready",
                status=ready,
                reason="Registered" if ready else "NotReady",
                message=message,
                now=now,
            ),
        ],
    }


def reconcile(spec_raw: Mapping[str, Any], body: kopf.Body, patch: kopf.Patch) -> None:
    """Level-based reconcile of one RestateDeployment (also the timer's body)."""
    try:
        spec = DeploymentSpec.parse(body.meta["name"], body.meta["namespace"], spec_raw)
    except SpecError as exc:
        patch.status["conditions"] = [
            common.condition(
                (body.get("status") or {}).get("conditions"),
                type_="Ready",
                status=False,
                reason="InvalidSpec",
                message=str(exc),
                now=common.utcnow(),
            )
        ]
        raise kopf.PermanentError(str(exc)) from exc
    collisions = int((body.get("status") or {}).get("collisionCount", 0) or 0)
    vhash = version_hash(spec, collisions)
    try:
        current = ensure_current(spec, body, vhash)
    except HashCollision as exc:
        patch.status["collisionCount"] = collisions + 1
        raise kopf.TemporaryError(f"hash collision on {exc}; retrying with a new hash", delay=1) from exc
    if spec.register.cluster and not common.is_ready(common.get_cluster(spec.register.cluster)):
        patch.status.update(
            status_of(spec, body, current, vhash, f"RestateCluster {spec.register.cluster} not ready", False)
        )
        raise kopf.TemporaryError(
            f"waiting for RestateCluster {spec.register.cluster}", delay=SETTINGS.resync_seconds
        )
    with AdminClient(admin_url(spec), timeout=SETTINGS.admin_timeout_seconds) as admin:
        try:
            view = admin.view()
            current, message, registered = register_current(spec, current, vhash, view, admin, body)
            if registered:
                view = admin.view()
            replicasets = owned_replicasets(spec, body)
            decisions = versions.plan(
                [to_version(rs) for rs in replicasets],
                current=current["metadata"]["name"],
                view=view,
                now=common.utcnow(),
                policy=policy_of(spec, body),
            )
            sync_autoscalers(spec, replicasets, decisions, current["metadata"]["name"])
            summaries = [execute(spec.namespace, decision, admin, body) for decision in decisions]
        except AdminError as exc:
            patch.status.update(status_of(spec, body, current, vhash, f"admin API: {exc}", False))
            raise kopf.TemporaryError(f"admin API: {exc}", delay=SETTINGS.resync_seconds) from exc
    label_latest(spec.namespace, replicasets, current["metadata"]["name"])
    ready = message == "registered"
    patch.status.update(status_of(spec, body, current, vhash, message, ready))
    patch.status["versions"] = [summary for summary in summaries if summary is not None]


def register_current(
    spec: DeploymentSpec,
    current: JsonObject,
    vhash: str,
    view: AdminView,
    admin: AdminClient,
    body: kopf.Body,
) -> tuple[JsonObject, str, bool]:
    """Register the current version once its pods are ready; returns (rs, status message, registered now)."""
    version = to_version(current)
    needed, force = versions.needs_registration(version, view)
    if not needed:
        return current, "registered", False
    if not rs_ready(current):
        return current, "waiting for the pods of the current version to be ready", False
    uri = service_url(spec, vhash)
    try:
        dp = admin.register(uri, use_http11=spec.use_http11, force=force)
    except AdminError as exc:
        if exc.status != 409:
            raise
        dp = admin.register(uri, use_http11=spec.use_http11, force=True)
    logger.info("registered %s as %s (force=%s)", uri, dp, force)
    common.event(body, reason="Registered", message=f"{current['metadata']['name']}: {dp} at {uri}")
    _annotate(
        spec.namespace, current["metadata"]["name"], {names.DEPLOYMENT_ID: dp, names.REMOVE_VERSION_AT: None}
    )
    current["metadata"].setdefault("annotations", {})[names.DEPLOYMENT_ID] = dp
    return current, "registered", True


def owned_replicasets(spec: DeploymentSpec, body: kopf.Body) -> list[JsonObject]:
    """Every version's ReplicaSet owned by this resource."""
    items = common.kube().list(*RS, spec.namespace, {names.OWNED_BY: spec.name})
    return [rs for rs in items if common.owned(rs, body.meta["uid"])]


def policy_of(spec: DeploymentSpec, body: kopf.Body, *, deleting: bool = False) -> versions.Policy:
    """Planning policy from the spec (and the deletion time while deleting)."""
    since = common.parse_time(body.meta.get("deletionTimestamp")) if deleting else None
    return versions.Policy(
        drain_delay=timedelta(seconds=spec.drain_delay_seconds),
        history_limit=spec.revision_history_limit,
        deleting_since=(since or common.utcnow()) if deleting else None,
        deletion_policy=spec.deletion_policy,
        delete_timeout=timedelta(seconds=spec.delete_timeout_seconds),
    )


def finalize(spec_raw: Mapping[str, Any], body: kopf.Body, patch: kopf.Patch) -> None:
    """Deletion: drain every version per the deletion policy; block (retry) while any is in use."""
    try:
        spec = DeploymentSpec.parse(body.meta["name"], body.meta["namespace"], spec_raw)
    except SpecError:
        return  # never reconciled, so nothing was registered: let the deletion through
    replicasets = owned_replicasets(spec, body)
    cluster_gone = spec.register.cluster is not None and common.get_cluster(spec.register.cluster) is None
    if cluster_gone or not replicasets:
        return  # nothing left to deregister from
    now: datetime = common.utcnow()
    with AdminClient(admin_url(spec), timeout=SETTINGS.admin_timeout_seconds) as admin:
        try:
            decisions = versions.plan(
                [to_version(rs) for rs in replicasets],
                current=None,
                view=admin.view(),
                now=now,
                policy=policy_of(spec, body, deleting=True),
            )
            sync_autoscalers(spec, replicasets, decisions, None)
            for decision in decisions:
                execute(spec.namespace, decision, admin, body)
        except AdminError as exc:
            raise kopf.TemporaryError(f"admin API: {exc}", delay=SETTINGS.resync_seconds) from exc
    blockers = versions.blocking(decisions)
    if blockers:
        detail = "; ".join(f"{d.version.name}: {d.reason}" for d in blockers)
        patch.status["conditions"] = [
            common.condition(
                (body.get("status") or {}).get("conditions"),
                type_="Ready",
                status=False,
                reason="DeploymentInUse",
                message=f"deletion waits for: {detail}",
                now=now,
            )
        ]
        raise kopf.TemporaryError(f"deletion waits for: {detail}", delay=SETTINGS.resync_seconds)


@kopf.on.resume(GROUP, DEPLOYMENT_VERSION, PLURAL)
@kopf.on.create(GROUP, DEPLOYMENT_VERSION, PLURAL)
@kopf.on.update(GROUP, DEPLOYMENT_VERSION, PLURAL, field="spec")
def deployment_changed(spec: kopf.Spec, body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Create, update or resume: reconcile now."""
    reconcile(spec, body, patch)


@kopf.timer(
    GROUP, DEPLOYMENT_VERSION, PLURAL, interval=SETTINGS.resync_seconds, initial_delay=SETTINGS.resync_seconds
)
def deployment_resync(spec: kopf.Spec, body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Periodic reconcile: progresses drains and heals drift."""
    if body.meta.get("deletionTimestamp"):
        return
    reconcile(spec, body, patch)


@kopf.on.delete(GROUP, DEPLOYMENT_VERSION, PLURAL)
def deployment_deleted(spec: kopf.Spec, body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Deletion waits for drain (the finalizer), per ``restate.deletionPolicy``."""
    finalize(spec, body, patch)
