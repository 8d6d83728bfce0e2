"""The schema registry: the in-memory view of deployments and services that every component reads.

Lookups are on the hot path (every ingress call and invocation attempt), so they are plain dict reads
of an immutable snapshot that is swapped whole on each change. Changes are computed by the pure
functions of :mod:`restate_server.schema.updater`, written to the metadata store with compare-and-set
(one JSON document under ``"schema"``), and only then made visible; listeners are called after each
change. Discovery is injected, so the registry never does network I/O of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from restate_server import ids
from restate_server.metadata import api as metadata_api
from restate_server.protocol import discovery
from restate_server.schema import errors, model, serde, updater
from restate_server.schema.updater import AddResult, ServiceChanges

__all__ = ["AddResult", "Discoverer", "SchemaRegistry", "ServiceChanges"]

log = logging.getLogger(__name__)

SCHEMA_KEY = "schema"
_CAS_ATTEMPTS = 8  # only other writers of the same store can make us retry; a few rounds settle it


class Discoverer(Protocol):
    """Fetches and validates an endpoint's manifest (``admin.discovery.discover`` in production)."""

    def __call__(
        self, uri: str, *, use_http_11: bool, additional_headers: Mapping[str, str]
    ) -> Awaitable[discovery.DiscoveredEndpoint]: ...


Listener = Callable[["SchemaRegistry"], None]


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One consistent state of the schema."""

    version: int
    deployments: Mapping[str, model.Deployment]
    services: Mapping[str, model.Service]


def _snapshot(version: int, deployments: Mapping[str, model.Deployment]) -> _Snapshot:
    return _Snapshot(version, deployments, updater.active_index(deployments))


class SchemaRegistry:
    """Deployments and services, latest revision first, persisted in the metadata store."""

    def __init__(
        self,
        store: metadata_api.MetadataStore,
        *,
        discoverer: Discoverer | None = None,
        routing_headers: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._discoverer = discoverer
        self._routing_headers = routing_headers
        self._clock = clock
        self._state = _snapshot(metadata_api.ABSENT, {})
        self._listeners: list[Listener] = []
        self._lock = asyncio.Lock()

    @classmethod
    async def load(
        cls,
        store: metadata_api.MetadataStore,
        *,
        discoverer: Discoverer | None = None,
        routing_headers: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
    ) -> SchemaRegistry:
        """A registry initialised from what the store holds."""
        registry = cls(store, discoverer=discoverer, routing_headers=routing_headers, clock=clock)
        await registry.refresh()
        return registry

    # ------------------------------------------------------------------ lookups (hot path)

    @property
    def version(self) -> int:
        """The metadata version of the current schema (0 before anything was registered)."""
        return self._state.version

    def service(self, name: str) -> model.Service | None:
        """The latest revision of a service."""
        return self._state.services.get(name)

    def services(self) -> list[model.Service]:
        """The latest revision of every service."""
        return list(self._state.services.values())

    def handler(self, service: str, handler: str) -> model.Handler | None:
        """A handler of the latest revision of a service."""
        svc = self._state.services.get(service)
        return None if svc is None else svc.handlers.get(handler)

    def deployment(self, deployment_id: str) -> model.Deployment | None:
        """A deployment (superseded ones included) with what it offered."""
        return self._state.deployments.get(deployment_id)

    def deployments(self) -> list[model.Deployment]:
        """Every deployment, in registration order."""
        return list(self._state.deployments.values())

    def latest_deployment(self, service: str) -> model.Deployment | None:
        """The deployment that serves the latest revision of ``service``: where new invocations go."""
        svc = self._state.services.get(service)
        return None if svc is None else self._state.deployments.get(svc.deployment_id)

    def find_deployment(self, uri: str, additional_headers: Mapping[str, str]) -> model.Deployment | None:
        """The newest deployment registered at this address."""
        return updater.find(self._state.deployments, uri, additional_headers, self._routing_headers)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(registry)`` after every change; returns a function that unregisters it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # ------------------------------------------------------------------ changes

    async def refresh(self) -> None:
        """Reload the schema from the store (after another writer changed it)."""
        stored = await self._store.get(SCHEMA_KEY)
        if stored is None:
            self._state = _snapshot(metadata_api.ABSENT, {})
        else:
            self._state = _snapshot(stored.version, serde.load(json.loads(stored.value)))

    async def _commit(
        self, change: Callable[[Mapping[str, model.Deployment]], dict[str, model.Deployment]]
    ) -> None:
        """Apply ``change`` to the latest stored schema with compare-and-set, then publish it."""
        async with self._lock:
            for _ in range(_CAS_ATTEMPTS):
                current = self._state
                new = change(current.deployments)
                if new == current.deployments:
                    return  # e.g. a concurrent registration of the same address already landed
                payload = json.dumps(serde.dump(new), separators=(",", ":")).encode()
                try:
                    version = await self._store.put(SCHEMA_KEY, payload, expected_version=current.version)
                except metadata_api.PreconditionFailed:
                    log.info("schema changed by another writer; retrying on the new version")
                    await self.refresh()
                    continue
                self._state = _snapshot(version, new)
                break
            else:
                raise errors.SchemaError("internal error: the schema kept changing concurrently")
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:
                log.exception("schema listener failed")

    async def _discover(
        self, uri: str, use_http_11: bool, additional_headers: Mapping[str, str]
    ) -> discovery.DiscoveredEndpoint:
        if self._discoverer is None:
            raise errors.SchemaError("internal error: no discovery client configured")
        return await self._discoverer(uri, use_http_11=use_http_11, additional_headers=additional_headers)

    async def register_deployment(
        self,
        uri: str,
        *,
        additional_headers: Mapping[str, str] | None = None,
        use_http_11: bool = False,
        metadata: Mapping[str, str] | None = None,
        overwrite: bool = False,
        allow_breaking: bool = False,
        dry_run: bool = False,
    ) -> tuple[AddResult, model.Deployment]:
        """Discover ``uri`` and register what it offers (see :func:`updater.add_deployment`).

        Without ``overwrite``, an address that is already registered is answered from the registry
        without contacting the endpoint, as upstream does.
        """
        headers = dict(additional_headers or {})
        if not overwrite:
            existing = self.find_deployment(uri, headers)
            if existing is not None:
                return AddResult.UNCHANGED, existing
        endpoint = await self._discover(uri, use_http_11, headers)
        new_id = str(ids.DeploymentId.generate())
        outcome: list[tuple[AddResult, str]] = []

        def change(deployments: Mapping[str, model.Deployment]) -> dict[str, model.Deployment]:
            result, dp_id, new = updater.add_deployment(
                deployments,
                uri=uri,
                additional_headers=headers,
                metadata=dict(metadata or {}),
                endpoint=endpoint,
                overwrite=overwrite,
                allow_breaking=allow_breaking,
                routing_headers=self._routing_headers,
                new_id=new_id,
                now_ms=int(self._clock() * 1000),
            )
            outcome[:] = [(result, dp_id)]
            return new

        if dry_run:
            new = change(self._state.deployments)
        else:
            await self._commit(change)
            new = dict(self._state.deployments)
        result, dp_id = outcome[0]
        return result, new[dp_id]

    async def update_deployment(
        self,
        deployment_id: str,
        *,
        uri: str | None = None,
        additional_headers: Mapping[str, str] | None = None,
        use_http_11: bool | None = None,
        overwrite: bool = False,
        dry_run: bool = False,
    ) -> model.Deployment:
        """Re-discover a deployment at a (possibly new) address and update it in place."""
        existing = self.deployment(deployment_id)
        if existing is None:
            raise errors.NotFound(f"deployment with id '{deployment_id}'")
        target = uri if uri is not None else existing.uri
        headers = dict(additional_headers if additional_headers is not None else existing.additional_headers)
        http11 = use_http_11 if use_http_11 is not None else (existing.use_http_11 if uri is None else False)
        endpoint = await self._discover(target, http11, headers)

        def change(deployments: Mapping[str, model.Deployment]) -> dict[str, model.Deployment]:
            return updater.update_deployment(
                deployments,
                deployment_id,
                uri=target,
                additional_headers=headers,
                endpoint=endpoint,
                overwrite=overwrite,
            )

        if dry_run:
            return change(self._state.deployments)[deployment_id]
        await self._commit(change)
        return self._state.deployments[deployment_id]

    async def delete_deployment(self, deployment_id: str) -> None:
        """Forget a deployment (forced: in-flight invocations pinned to it will fail)."""
        await self._commit(lambda deployments: updater.remove_deployment(deployments, deployment_id))

    async def modify_service(self, name: str, changes: ServiceChanges) -> model.Service:
        """Override options of the latest revision of a service; returns the new revision record."""
        if not changes.empty:
            await self._commit(lambda deployments: updater.modify_service(deployments, name, changes))
        service = self.service(name)
        if service is None:
            raise errors.NotFound(f"service with name '{name}'")
        return service
