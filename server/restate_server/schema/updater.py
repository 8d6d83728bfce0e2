"""Computing the next schema from the current one: the rules of registration, update and removal.

Pure functions over an immutable mapping of deployments; they return a new mapping (or raise a
:class:`~restate_server.schema.errors.SchemaError`) and never touch storage, so the registry can run
them for a dry run, or again after losing a compare-and-set race. The rules follow upstream 1.7
(``crates/types/src/schema/metadata/updater``):

* the latest revision of a service is the highest revision any deployment offers;
* registering a known address without overwrite changes nothing; with overwrite it keeps the
  deployment id and replaces what that deployment offers;
* each registration bumps the revision of every service it offers; changing a service's type is
  refused (META0006) unless breaking changes are allowed; removed handlers are allowed;
* superseded deployments are kept, with what they offered, for the invocations pinned to them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from urllib.parse import urlsplit, urlunsplit

from restate_server.protocol import discovery
from restate_server.schema import build, errors, model

log = logging.getLogger(__name__)

Deployments = Mapping[str, model.Deployment]


class AddResult(StrEnum):
    """What a registration did."""

    CREATED = "created"
    UNCHANGED = "unchanged"
    OVERWRITTEN = "overwritten"


def normalize_uri(uri: str) -> str:
    """The URI as upstream displays it (an empty path becomes ``/``)."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(scheme=parts.scheme.lower(), path=parts.path or "/"))


def same_address(
    deployment: model.Deployment,
    uri: str,
    headers: Mapping[str, str],
    routing_headers: tuple[str, ...],
) -> bool:
    """Whether ``uri`` names this deployment: same authority and path, same routing headers."""
    mine, theirs = urlsplit(deployment.uri), urlsplit(normalize_uri(uri))
    if (mine.netloc, mine.path) != (theirs.netloc, theirs.path):
        return False
    lower_mine = {k.lower(): v for k, v in deployment.additional_headers.items()}
    lower_theirs = {k.lower(): v for k, v in headers.items()}
    return all(lower_mine.get(h.lower()) == lower_theirs.get(h.lower()) for h in routing_headers)


def find(
    deployments: Deployments, uri: str, headers: Mapping[str, str], routing_headers: tuple[str, ...]
) -> model.Deployment | None:
    """The newest deployment registered at this address, if any."""
    matches = [d for d in deployments.values() if same_address(d, uri, headers, routing_headers)]
    return max(matches, key=lambda d: d.created_at, default=None)


def active_index(deployments: Deployments) -> dict[str, model.Service]:
    """The latest revision of every service (highest revision wins; first registered on a tie)."""
    index: dict[str, model.Service] = {}
    for deployment in deployments.values():
        for service in deployment.services.values():
            current = index.get(service.name)
            if current is None or current.revision < service.revision:
                index[service.name] = service
    return index


def _protocol_type(endpoint: discovery.DiscoveredEndpoint) -> model.ProtocolType:
    if endpoint.protocol_mode == discovery.BIDI_STREAM:
        return model.ProtocolType.BIDI_STREAM
    return model.ProtocolType.REQUEST_RESPONSE


def _check_type(name: str, new: model.ServiceType, previous: model.Service, allow_breaking: bool) -> None:
    if previous.ty is new:
        return
    if not allow_breaking:
        raise errors.DifferentType(name)
    log.warning("changing the type of service %s from %s to %s: a breaking change", name, previous.ty, new)


def _services(
    endpoint: discovery.DiscoveredEndpoint,
    deployment_id: str,
    previous: Mapping[str, model.Service],
    *,
    allow_breaking: bool,
    bump: bool,
) -> dict[str, model.Service]:
    """The services an endpoint offers, as revisions following ``previous`` (bumped or kept)."""
    services: dict[str, model.Service] = {}
    for manifest in endpoint.services:
        build.check_service_name(manifest.name)
        before = previous.get(manifest.name)
        if before is not None:
            _check_type(manifest.name, build.service_type(manifest), before, allow_breaking)
        revision = 1 if before is None else before.revision + (1 if bump else 0)
        services[manifest.name] = build.build_service(
            manifest, deployment_id=deployment_id, revision=revision
        )
    return services


def add_deployment(
    deployments: Deployments,
    *,
    uri: str,
    additional_headers: Mapping[str, str],
    metadata: Mapping[str, str],
    endpoint: discovery.DiscoveredEndpoint,
    overwrite: bool,
    allow_breaking: bool,
    routing_headers: tuple[str, ...],
    new_id: str,
    now_ms: int,
) -> tuple[AddResult, str, dict[str, model.Deployment]]:
    """Register a discovered endpoint; returns the result, the deployment id and the new mapping."""
    existing = find(deployments, uri, additional_headers, routing_headers)
    result, deployment_id = AddResult.CREATED, new_id
    if existing is not None:
        if not overwrite:
            return AddResult.UNCHANGED, existing.id, dict(deployments)
        result, deployment_id = AddResult.OVERWRITTEN, existing.id
        for name in existing.services.keys() - {s.name for s in endpoint.services}:
            log.warning("removing service %s from deployment %s: forced overwrite", name, existing.id)
    services = _services(
        endpoint, deployment_id, active_index(deployments), allow_breaking=allow_breaking, bump=True
    )
    deployment = model.Deployment(
        id=deployment_id,
        uri=normalize_uri(uri),
        protocol_type=_protocol_type(endpoint),
        use_http_11=endpoint.http_version == discovery.HTTP_11,
        additional_headers=MappingProxyType(dict(additional_headers)),
        created_at=now_ms,
        min_protocol_version=endpoint.min_protocol_version,
        max_protocol_version=endpoint.max_protocol_version,
        sdk_version=endpoint.sdk_version,
        services=MappingProxyType(services),
        metadata=MappingProxyType(dict(metadata)),
    )
    updated = dict(deployments)
    updated[deployment_id] = deployment
    return result, deployment_id, updated


def update_deployment(
    deployments: Deployments,
    deployment_id: str,
    *,
    uri: str,
    additional_headers: Mapping[str, str],
    endpoint: discovery.DiscoveredEndpoint,
    overwrite: bool,
) -> dict[str, model.Deployment]:
    """Point an existing deployment elsewhere in place (and, with ``overwrite``, take its new services)."""
    existing = deployments.get(deployment_id)
    if existing is None:
        raise errors.NotFound(f"deployment with id '{deployment_id}'")
    old = (existing.min_protocol_version, existing.max_protocol_version)
    new = (endpoint.min_protocol_version, endpoint.max_protocol_version)
    if old != new:
        raise errors.DifferentProtocolVersions(old, new)
    changes: dict[str, object] = {
        "uri": normalize_uri(uri),
        "protocol_type": _protocol_type(endpoint),
        "use_http_11": endpoint.http_version == discovery.HTTP_11,
        "additional_headers": MappingProxyType(dict(additional_headers)),
        "sdk_version": endpoint.sdk_version,
    }
    if overwrite:
        # Revisions stay as they were: an in-place update must not make a draining deployment "latest".
        services = _services(endpoint, deployment_id, existing.services, allow_breaking=True, bump=False)
        changes["services"] = MappingProxyType(services)
    updated = dict(deployments)
    updated[deployment_id] = dataclasses.replace(existing, **changes)  # type: ignore[arg-type]
    return updated


def remove_deployment(deployments: Deployments, deployment_id: str) -> dict[str, model.Deployment]:
    """Forget a deployment; older revisions of its services become the latest again."""
    if deployment_id not in deployments:
        raise errors.NotFound(f"deployment with id '{deployment_id}'")
    return {k: v for k, v in deployments.items() if k != deployment_id}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServiceChanges:
    """Admin overrides of a service's options (``None`` = leave as is); durations in seconds."""

    public: bool | None = None
    idempotency_retention: float | None = None
    workflow_completion_retention: float | None = None
    journal_retention: float | None = None
    inactivity_timeout: float | None = None
    abort_timeout: float | None = None
    state_history_retention: float | None = None

    @property
    def empty(self) -> bool:
        """True when nothing would change."""
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))


def modify_service(
    deployments: Deployments, name: str, changes: ServiceChanges
) -> dict[str, model.Deployment]:
    """Apply admin overrides to the latest revision of a service (until its next registration)."""
    current = active_index(deployments).get(name)
    if current is None:
        raise errors.NotFound(f"service with name '{name}'")
    if changes.workflow_completion_retention is not None and current.ty is not model.ServiceType.WORKFLOW:
        raise errors.InvalidService(f"modifying retention time for service type {current.ty} is unsupported")
    if changes.state_history_retention is not None and current.ty is model.ServiceType.SERVICE:
        raise errors.InvalidService(
            f"modifying state history retention for service type {current.ty} is unsupported: it has no state"
        )
    fields = {
        f.name: getattr(changes, f.name)
        for f in dataclasses.fields(changes)
        if getattr(changes, f.name) is not None
    }
    service = dataclasses.replace(current, **fields)
    if changes.public is not None:
        handlers = {
            h.name: h if h.public_override is not None else dataclasses.replace(h, public=changes.public)
            for h in current.handlers.values()
        }
        service = dataclasses.replace(service, handlers=MappingProxyType(handlers))
    deployment = deployments[current.deployment_id]
    services = dict(deployment.services)
    services[name] = service
    updated = dict(deployments)
    updated[deployment.id] = dataclasses.replace(deployment, services=MappingProxyType(services))
    return updated
