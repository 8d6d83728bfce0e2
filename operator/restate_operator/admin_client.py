"""Typed client for the few Restate admin API endpoints the operator needs.

Deployments: ``POST /deployments`` (register), ``DELETE /deployments/{id}?force=true`` (deregister),
``GET /deployments`` and ``GET /services`` (which deployment is the latest for each service).
Invocations: ``POST /query`` with SQL over ``sys_invocation_status``; if the server cannot answer, the
caller gets ``None`` and must assume every version is still in use (the safe side).
Subscriptions: ``POST|GET|DELETE /subscriptions``. Transport errors become :class:`AdminError`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

logger = logging.getLogger(__name__)

PINNED_QUERY = (
    "SELECT pinned_deployment_id AS deployment_id, COUNT(*) AS n FROM sys_invocation_status "
    "WHERE status != 'completed' AND pinned_deployment_id IS NOT NULL GROUP BY pinned_deployment_id"
)
UNPINNED_QUERY = (
    "SELECT target_service_name AS service, COUNT(*) AS n FROM sys_invocation_status "
    "WHERE status != 'completed' AND pinned_deployment_id IS NULL GROUP BY target_service_name"
)


class AdminError(Exception):
    """The admin API could not be reached or refused the request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """A registered deployment and the services it exposes."""

    id: str
    uri: str
    services: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """A Kafka subscription as the admin API reports it."""

    id: str
    source: str
    sink: str
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocations:
    """Unfinished invocations: pinned per deployment id, not yet pinned per target service."""

    pinned: Mapping[str, int]
    unpinned: Mapping[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminView:
    """What the operator needs to know about a cluster to plan version drains."""

    deployments: Mapping[str, Deployment]
    latest_for: Mapping[str, str]
    """Service name -> the deployment id that is currently the latest for it."""
    invocations: Invocations | None
    """``None`` when ``/query`` is unavailable: every registered version then counts as in use."""

    @property
    def latest_ids(self) -> frozenset[str]:
        return frozenset(self.latest_for.values())


class AdminClient:
    """Synchronous client for one admin API base URL (kopf runs sync handlers in a thread pool)."""

    def __init__(self, base_url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def _call(self, method: str, path: str, *, ok: tuple[int, ...], **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AdminError(f"{method} {self.base_url}{path}: {exc}") from exc
        if response.status_code not in ok:
            raise AdminError(
                f"{method} {self.base_url}{path}: HTTP {response.status_code} {response.text[:300]}",
                status=response.status_code,
            )
        return response

    def register(self, uri: str, *, use_http11: bool = False, force: bool = False) -> str:
        """Register a deployment URI; returns its ``dp_…`` id (also when it was already registered)."""
        body = {"uri": uri, "use_http_11": use_http11, "force": force}
        response = self._call("POST", "/deployments", ok=(200, 201), json=body)
        deployment_id: str = response.json()["id"]
        return deployment_id

    def deregister(self, deployment_id: str) -> None:
        """Force-remove a deployment; an unknown id is fine (already gone)."""
        self._call(
            "DELETE", f"/deployments/{deployment_id}", ok=(200, 202, 204, 404), params={"force": "true"}
        )

    def deployments(self) -> dict[str, Deployment]:
        """All registered deployments by id."""
        rows = self._call("GET", "/deployments", ok=(200,)).json().get("deployments") or []
        return {
            row["id"]: Deployment(
                id=row["id"],
                uri=row.get("uri", ""),
                services=frozenset(svc["name"] for svc in row.get("services") or []),
            )
            for row in rows
        }

    def latest_for_services(self) -> dict[str, str]:
        """Service name -> id of the deployment that is the latest for it."""
        rows = self._call("GET", "/services", ok=(200,)).json().get("services") or []
        return {row["name"]: row["deployment_id"] for row in rows if row.get("deployment_id")}

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run SQL through ``/query`` and return the JSON rows."""
        response = self._call(
            "POST", "/query", ok=(200,), json={"query": sql}, headers={"accept": "application/json"}
        )
        rows: list[dict[str, Any]] = response.json().get("rows") or []
        return rows

    def invocations(self) -> Invocations | None:
        """Unfinished invocation counts, or ``None`` if ``/query`` cannot say (treat as in use)."""
        try:
            pinned = self.query(PINNED_QUERY)
            unpinned = self.query(UNPINNED_QUERY)
        except AdminError as exc:
            logger.warning("cannot count unfinished invocations, keeping every version: %s", exc)
            return None
        return Invocations(
            pinned={row["deployment_id"]: int(row["n"]) for row in pinned if row.get("deployment_id")},
            unpinned={row["service"]: int(row["n"]) for row in unpinned if row.get("service")},
        )

    def view(self) -> AdminView:
        """Deployments, latest-per-service and invocation counts in one snapshot."""
        return AdminView(
            deployments=self.deployments(),
            latest_for=self.latest_for_services(),
            invocations=self.invocations(),
        )

    def create_subscription(self, source: str, sink: str, options: Mapping[str, str]) -> Subscription:
        """Create a subscription and return it with its ``sub_…`` id."""
        body = {"source": source, "sink": sink, "options": dict(options)}
        return _subscription(self._call("POST", "/subscriptions", ok=(200, 201), json=body).json())

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        """The subscription, or ``None`` if the server does not know it."""
        response = self._call("GET", f"/subscriptions/{subscription_id}", ok=(200, 404))
        return None if response.status_code == 404 else _subscription(response.json())

    def delete_subscription(self, subscription_id: str) -> None:
        """Delete a subscription; an unknown id is fine."""
        self._call("DELETE", f"/subscriptions/{subscription_id}", ok=(200, 202, 204, 404))


def _subscription(row: Mapping[str, Any]) -> Subscription:
    return Subscription(
        id=row["id"],
        source=row.get("source", ""),
        sink=row.get("sink", ""),
        options={str(k): str(v) for k, v in (row.get("options") or {}).items()},
    )
