"""Kafka clusters through the admin API (upstream 1.7's ``/kafka-clusters``), kept in the metadata store.

Create, list, get (``?include_subscriptions``), patch and delete (``?force``). A cluster is a name and
librdkafka properties, which must name brokers (``bootstrap.servers`` or ``metadata.broker.list``).
Clusters of the configuration file (``[[ingress.kafka-clusters]]``, deprecated upstream) are listed
too, with a deprecation note, but are read-only here. Secrets are redacted in every answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from restate_server.admin import app as admin_app, errors
from restate_server.admin.subscriptions import (
    OnChange,
    guarded,
    known_clusters,
    metadata_store,
    notifying,
)
from restate_server.kafka import catalog
from restate_server.kafka.catalog import KafkaCluster

log = logging.getLogger(__name__)

# Characters of a URI authority (upstream parses the name as one): unreserved, sub-delims, ':', '@', '%', '[]'
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@%[]")
_IGNORED_PROPERTIES = ("enable.auto.commit", "enable.auto.offset.store")


def routes(on_change: OnChange | None = None) -> Callable[[admin_app.AdminRoutes], None]:
    """The ``/kafka-clusters`` routes; ``on_change`` runs after every accepted change."""

    def register(admin_routes: admin_app.AdminRoutes) -> None:
        admin_routes.add("POST", "/kafka-clusters", notifying(create, on_change))
        admin_routes.add("GET", "/kafka-clusters", list_clusters)
        admin_routes.add("GET", "/kafka-clusters/{cluster_name}", get)
        admin_routes.add("PATCH", "/kafka-clusters/{cluster_name}", notifying(update, on_change))
        admin_routes.add("DELETE", "/kafka-clusters/{cluster_name}", notifying(delete, on_change))

    return register


def _timestamp(millis: int) -> str:
    """RFC 3339 in UTC with the shortest exact fraction, as upstream's ``humantime`` prints it."""
    moment = datetime.fromtimestamp(millis // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = millis % 1000
    return f"{moment}.{fraction:03d}Z" if fraction else f"{moment}Z"


def _simple(cluster: KafkaCluster) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": cluster.name,
        "properties": catalog.redacted(cluster.properties),
        "created_at": _timestamp(cluster.created_at),
    }
    if cluster.info:
        body["info"] = [{"message": message} for message in cluster.info]
    return body


def _name_problem(name: Any) -> str | None:
    """Why ``name`` is not a valid cluster name (a URI authority), or None."""
    if not isinstance(name, str):
        return "invalid type: expected a string"
    if not name:
        return "empty string"
    if any(c not in _NAME_CHARS for c in name):
        return "invalid uri character"
    return None


def _path_name(request: web.Request) -> str:
    name = request.match_info["cluster_name"]
    problem = _name_problem(name)
    if problem is not None:
        raise errors.invalid_field("cluster_name", problem)
    return name


def _properties(body: dict[str, Any], name: str) -> dict[str, str]:
    if "properties" not in body:
        raise admin_app.body_shape_error("missing field `properties`")
    properties = body["properties"]
    if not isinstance(properties, dict) or not all(isinstance(v, str) for v in properties.values()):
        raise admin_app.body_shape_error("properties: invalid type, expected a map of strings")
    if not catalog.has_brokers(properties):
        raise errors.AdminError(
            400,
            f"kafka cluster '{name}' properties must contain either 'bootstrap.servers' or 'metadata.broker.list'",
        )
    for ignored in _IGNORED_PROPERTIES:
        if ignored in properties:
            log.warning("%s will be ignored", ignored)
    return dict(properties)


def _static_names(request: web.Request) -> set[str]:
    config = admin_app.context(request).config
    return {c.name for c in getattr(config.ingress, "kafka_clusters", [])}


async def create(request: web.Request) -> web.StreamResponse:
    """Store a new cluster: 201 with a ``Location``; 409 if the name is taken."""
    body = await admin_app.read_json(request)
    if "name" not in body:
        raise admin_app.body_shape_error("missing field `name`")
    problem = _name_problem(body["name"])
    if problem is not None:
        raise admin_app.body_shape_error(f"name: {problem}")
    name: str = body["name"]
    properties = _properties(body, name)
    if name in _static_names(request):
        raise errors.AdminError(
            409,
            f"kafka cluster '{name}' conflicts with static configuration. Cluster names in schema registry "
            "cannot override statically configured clusters.",
        )
    created = KafkaCluster(
        name=name, properties=properties, created_at=int(datetime.now(tz=UTC).timestamp() * 1000)
    )

    def add(clusters: list[KafkaCluster]) -> list[KafkaCluster]:
        if catalog.find_cluster(clusters, name) is not None:
            raise errors.AdminError(409, f"kafka cluster '{name}' already exists in schema registry")
        return [*clusters, created]

    await guarded(catalog.update_stored_clusters(metadata_store(request), add))
    return errors.json_response(_simple(created), status=201, headers={"location": f"kafka-clusters/{name}"})


async def list_clusters(request: web.Request) -> web.StreamResponse:
    """Every cluster: stored ones, then those of the configuration file."""
    return errors.json_response({"clusters": [_simple(c) for c in await known_clusters(request)]})


async def get(request: web.Request) -> web.StreamResponse:
    """One cluster; with ``include_subscriptions=true``, the subscriptions that read from it."""
    name = request.match_info["cluster_name"]
    cluster = catalog.find_cluster(await known_clusters(request), name)
    if cluster is None:
        raise errors.AdminError(404, f"The requested Kafka cluster '{name}' does not exist")
    include = request.query.get("include_subscriptions", "false")
    if include not in ("true", "false"):
        raise errors.PlainTextError(
            400, f"Failed to deserialize query string: include_subscriptions: invalid value `{include}`"
        )
    subscriptions = []
    if include == "true":
        subscriptions = [
            s.to_json(redact=True)
            for s in await catalog.load_subscriptions(metadata_store(request))
            if s.cluster == name
        ]
    body = _simple(cluster)
    info = body.pop("info", None)
    body["subscriptions"] = subscriptions
    if info:
        body["info"] = info
    return errors.json_response(body)


async def update(request: web.Request) -> web.StreamResponse:
    """Replace a stored cluster's properties (consumers on it restart); 409 for a configured one."""
    name = _path_name(request)
    properties = _properties(await admin_app.read_json(request), name)
    static = name in _static_names(request)

    def replace(clusters: list[KafkaCluster]) -> list[KafkaCluster]:
        current = catalog.find_cluster(clusters, name)
        if current is None:
            if static:
                raise _read_only(name)
            raise errors.AdminError(404, f"not found in the schema registry: kafka cluster '{name}'")
        updated = KafkaCluster(name=name, properties=properties, created_at=current.created_at)
        return [updated if c.name == name else c for c in clusters]

    stored = await guarded(catalog.update_stored_clusters(metadata_store(request), replace))
    cluster = catalog.find_cluster(catalog.all_clusters(stored, []), name)
    assert cluster is not None
    return errors.json_response(_simple(cluster))


async def delete(request: web.Request) -> web.StreamResponse:
    """Remove a stored cluster: 202; 409 while subscriptions read from it, unless ``force=true``."""
    name = _path_name(request)
    force = request.query.get("force") == "true"
    static = name in _static_names(request)
    store = metadata_store(request)
    subscriptions = [s for s in await catalog.load_subscriptions(store) if s.cluster == name]

    def remove(clusters: list[KafkaCluster]) -> list[KafkaCluster]:
        if catalog.find_cluster(clusters, name) is None:
            if static:
                raise _read_only(name)
            raise errors.AdminError(404, f"not found in the schema registry: kafka cluster named '{name}'")
        for subscription in subscriptions:
            if not force:
                raise errors.AdminError(
                    409,
                    f"Removing the kafka cluster '{name}' leads to subscription '{subscription.id}' being "
                    "orphan. Remove the subscription first, or use the 'force' flag.",
                )
            log.warning("Removing kafka cluster '%s' will interrupt subscription '%s'", name, subscription.id)
        return [c for c in clusters if c.name != name]

    await guarded(catalog.update_stored_clusters(store, remove))
    return web.Response(status=202)


def _read_only(name: str) -> errors.AdminError:
    return errors.AdminError(
        409,
        f"kafka cluster '{name}' cannot be updated, because it was defined in the restate configuration "
        "file. Update the configuration file directly, or remove the configuration file",
    )
