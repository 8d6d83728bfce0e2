"""Subscription controller: keeps one admin-API Kafka subscription per resource.

The ``sub_…`` id lives in ``status.subscriptionId``. A timer checks that the server still has it and
that it still matches the spec; if it was deleted behind the operator's back, or the spec changed, it is
(re-)created. Deleting the resource deletes the subscription (a finalizer), unless the cluster is gone.
The server answers secret options (``sasl.password``…) as ``***``, so those are compared through a hash
of the options the subscription was created from (``status.optionsHash``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import kopf

from restate_operator import common
from restate_operator.admin_client import AdminClient, AdminError, Subscription
from restate_operator.models import GROUP, SUBSCRIPTION_VERSION, SpecError, SubscriptionSpec
from restate_operator.settings import SETTINGS

PLURAL = "subscriptions"


REDACTED = "***"  # how the admin API shows a secret option


def options_hash(spec: SubscriptionSpec) -> str:
    """A digest of the spec's options, kept in status to notice changes the server cannot show."""
    return hashlib.sha256(json.dumps(spec.options, sort_keys=True).encode()).hexdigest()[:16]


def matches(actual: Subscription | None, spec: SubscriptionSpec, applied_hash: str | None = None) -> bool:
    """Whether the server's subscription is the one the spec describes (options the server added are ok).

    A redacted option matches only if the options are still those it was created from (``applied_hash``).
    """
    if actual is None:
        return False
    redacted = [k for k in spec.options if actual.options.get(k) == REDACTED != spec.options[k]]
    if redacted and applied_hash != options_hash(spec):
        return False
    same_options = all(actual.options.get(k) == v for k, v in spec.options.items() if k not in redacted)
    return actual.source == spec.source and actual.sink == spec.sink and same_options


def reconcile(spec_raw: Mapping[str, Any], body: kopf.Body, patch: kopf.Patch) -> None:
    """Make the admin API hold exactly the subscription the spec describes."""
    now = common.utcnow()
    previous = (body.get("status") or {}).get("conditions")
    try:
        spec = SubscriptionSpec.parse(spec_raw)
    except SpecError as exc:
        patch.status["conditions"] = [
            common.condition(
                previous, type_="Ready", status=False, reason="InvalidSpec", message=str(exc), now=now
            )
        ]
        raise kopf.PermanentError(str(exc)) from exc
    if not common.is_ready(common.get_cluster(spec.cluster)):
        patch.status["conditions"] = [
            common.condition(
                previous,
                type_="Ready",
                status=False,
                reason="ClusterNotReady",
                message=f"RestateCluster {spec.cluster} is not ready",
                now=now,
            )
        ]
        raise kopf.TemporaryError(f"waiting for RestateCluster {spec.cluster}", delay=SETTINGS.resync_seconds)
    known = (body.get("status") or {}).get("subscriptionId")
    applied_hash = (body.get("status") or {}).get("optionsHash")
    try:
        with AdminClient(
            common.cluster_admin_url(spec.cluster), timeout=SETTINGS.admin_timeout_seconds
        ) as admin:
            actual = admin.get_subscription(known) if known else None
            if not matches(actual, spec, applied_hash):
                if actual is not None:
                    admin.delete_subscription(actual.id)
                actual = admin.create_subscription(spec.source, spec.sink, spec.options)
    except AdminError as exc:
        patch.status["conditions"] = [
            common.condition(
                previous, type_="Ready", status=False, reason="AdminApiError", message=str(exc), now=now
            )
        ]
        raise kopf.TemporaryError(str(exc), delay=SETTINGS.resync_seconds) from exc
    assert actual is not None
    patch.status["subscriptionId"] = actual.id
    patch.status["optionsHash"] = options_hash(spec)
    patch.status["observedGeneration"] = body.meta.get("generation")
    patch.status["conditions"] = [
        common.condition(
            previous,
            type_="Ready",
            status=True,
            reason="Subscribed",
            message=f"{spec.source} -> {spec.sink}",
            now=now,
        )
    ]


@kopf.on.resume(GROUP, SUBSCRIPTION_VERSION, PLURAL)
@kopf.on.create(GROUP, SUBSCRIPTION_VERSION, PLURAL)
@kopf.on.update(GROUP, SUBSCRIPTION_VERSION, PLURAL, field="spec")
def subscription_changed(spec: kopf.Spec, body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Create, update or resume: reconcile now."""
    reconcile(spec, body, patch)


@kopf.timer(
    GROUP,
    SUBSCRIPTION_VERSION,
    PLURAL,
    interval=SETTINGS.resync_seconds,
    initial_delay=SETTINGS.resync_seconds,
)
def subscription_resync(spec: kopf.Spec, body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Re-create the subscription if it vanished from the server."""
    if body.meta.get("deletionTimestamp"):
        return
    reconcile(spec, body, patch)


@kopf.on.delete(GROUP, SUBSCRIPTION_VERSION, PLURAL)
def subscription_deleted(spec: kopf.Spec, body: kopf.Body, **_: Any) -> None:
    """Delete the server's subscription; if the cluster itself is gone there is nothing to delete."""
    known = (body.get("status") or {}).get("subscriptionId")
    cluster = spec.get("cluster")
    if not known or not cluster or common.get_cluster(cluster) is None:
        return
    try:
        with AdminClient(common.cluster_admin_url(cluster), timeout=SETTINGS.admin_timeout_seconds) as admin:
            admin.delete_subscription(known)
    except AdminError as exc:
        raise kopf.TemporaryError(str(exc), delay=SETTINGS.resync_seconds) from exc
