"""Kafka subscriptions: create, list, get and delete, kept in the metadata store.

A subscription binds a topic of a Kafka cluster (``kafka://<cluster>/<topic>``) to a handler
(``service://<Service>/<handler>``). The stored form is :mod:`restate_server.kafka.catalog`'s; the
node's Kafka consumers follow it (``on_change`` tells them at once). Validation follows upstream 1.7:
bad URIs and unknown sinks are META0009, an unknown cluster (neither configured nor created through
``/kafka-clusters``) is a plain 400 naming the available ones. Options are redacted in answers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from restate_server.admin import app as admin_app, errors
from restate_server.ids import IdError, SubscriptionId
from restate_server.kafka import catalog
from restate_server.kafka.catalog import KafkaCluster, Subscription
from restate_server.metadata.api import MetadataStore

_INVALID_URI_CHARS = frozenset(' "<>\\^`{|}')

OnChange = Callable[[], None]


def routes(on_change: OnChange | None = None) -> Callable[[admin_app.AdminRoutes], None]:
    """The subscription routes; ``on_change`` runs after every accepted create or delete."""

    def register(admin_routes: admin_app.AdminRoutes) -> None:
        admin_routes.add("POST", "/subscriptions", notifying(create, on_change))
        admin_routes.add("GET", "/subscriptions", list_subscriptions)
        admin_routes.add("GET", "/subscriptions/{subscription}", get)
        admin_routes.add("DELETE", "/subscriptions/{subscription}", notifying(delete, on_change))

    return register


def notifying(handler: admin_app.Handler, on_change: OnChange | None) -> admin_app.Handler:
    """``handler``, then ``on_change`` when it succeeded."""
    if on_change is None:
        return handler

    async def wrapper(request: web.Request) -> web.StreamResponse:
        response = await handler(request)
        on_change()
        return response

    wrapper.__name__ = handler.__name__
    return wrapper


def metadata_store(request: web.Request) -> MetadataStore:
    """The metadata store, or 503 when the node has none."""
    store = admin_app.context(request).metadata
    if store is None:
        raise errors.AdminError(503, "The metadata store is not available")
    return store


async def guarded(update: Awaitable[Any]) -> Any:
    """A catalogue update, with its concurrent-write failure as upstream's 500."""
    try:
        return await update
    except catalog.ConcurrentUpdateError as exc:
        raise errors.AdminError(500, f"internal error: {exc}") from exc


async def known_clusters(request: web.Request) -> list[KafkaCluster]:
    """Clusters created through the admin API, then those of the configuration file."""
    config = admin_app.context(request).config
    # the admin config protocol does not require Kafka settings; the node's Config has them
    static = getattr(config.ingress, "kafka_clusters", [])
    return catalog.all_clusters(await catalog.load_stored_clusters(metadata_store(request)), static)


def _meta0009(message: str) -> errors.AdminError:
    return errors.AdminError(400, f"[META0009] {message}", "META0009")


def _uri(field: str, value: Any) -> str:
    """A URI as upstream's ``http::Uri`` normalises it (an empty path becomes ``/``)."""
    if not isinstance(value, str):
        raise admin_app.body_shape_error(f"{field}: invalid type, expected a string")
    if not value or any(c in _INVALID_URI_CHARS or ord(c) < 0x21 for c in value):
        raise admin_app.body_shape_error(f"{field}: invalid uri character")
    parts = urlsplit(value)
    if parts.scheme and parts.netloc and not parts.path:
        return value + "/"
    return value


def _validate_source(source: str) -> None:
    if urlsplit(source).scheme != "kafka":
        raise _meta0009(
            f"invalid source URI '{source}': must have a scheme segment, with supported schemes: [kafka]."
        )
    if not urlsplit(source).netloc:
        raise _meta0009(
            f"invalid source URI '{source}': source URI of Kafka type must have a authority segment "
            "containing the cluster name."
        )


async def _source_cluster(request: web.Request, source: str) -> KafkaCluster:
    name = urlsplit(source).netloc
    clusters = await known_clusters(request)
    cluster = catalog.find_cluster(clusters, name)
    if cluster is None:
        available = "[" + ", ".join(json.dumps(c.name) for c in clusters) + "]"
        raise errors.AdminError(400, f"Kafka cluster '{name}' not found. Available clusters: {available}")
    return cluster


def _validate_sink(request: web.Request, sink: str) -> None:
    parts = urlsplit(sink)
    if parts.scheme != "service":
        raise _meta0009(
            f"invalid sink URI '{sink}': must have a scheme segment, with supported schemes: [service]."
        )
    if not parts.netloc:
        raise _meta0009(
            f"invalid sink URI '{sink}': sink URI of service type must have a authority segment "
            "containing the service name."
        )
    handler = parts.path.removeprefix("/")
    if admin_app.context(request).registry.handler(parts.netloc, handler) is None:
        raise _meta0009(f"invalid sink URI '{sink}': cannot find service/handler specified in the sink URI.")


async def create(request: web.Request) -> web.StreamResponse:
    """Validate and store a new subscription; 201 with the defaults filled in."""
    body = await admin_app.read_json(request)
    for name in ("source", "sink"):
        if name not in body:
            raise admin_app.body_shape_error(f"missing field `{name}`")
    source, sink = _uri("source", body["source"]), _uri("sink", body["sink"])
    options = body.get("options") or {}
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise admin_app.body_shape_error("options: invalid type, expected a map of strings")
    _validate_source(source)
    _validate_sink(request, sink)
    cluster = await _source_cluster(request, source)
    sub_id = str(SubscriptionId.generate())
    subscription = Subscription(
        id=sub_id, source=source, sink=sink, options=catalog.subscription_defaults(sub_id, options, cluster)
    )
    await guarded(
        catalog.update_subscriptions(metadata_store(request), lambda current: [*current, subscription])
    )
    return errors.json_response(subscription.to_json(redact=True), status=201)


async def list_subscriptions(request: web.Request) -> web.StreamResponse:
    """All subscriptions, optionally only those with exactly the given ``sink`` and/or ``source``."""
    current = await catalog.load_subscriptions(metadata_store(request))
    sink, source = request.query.get("sink"), request.query.get("source")
    selected = [
        s.to_json(redact=True)
        for s in current
        if (sink is None or s.sink == sink) and (source is None or s.source == source)
    ]
    return errors.json_response({"subscriptions": selected})


def _parse_id(request: web.Request) -> str:
    raw = request.match_info["subscription"]
    try:
        return str(SubscriptionId.parse(raw))
    except IdError as e:
        raise errors.PlainTextError(
            400, f"Invalid URL: Cannot parse `subscription` with value `{raw}`: {e}"
        ) from e


async def get(request: web.Request) -> web.StreamResponse:
    """One subscription, or 404."""
    sub_id = _parse_id(request)
    for subscription in await catalog.load_subscriptions(metadata_store(request)):
        if subscription.id == sub_id:
            return errors.json_response(subscription.to_json(redact=True))
    raise errors.not_found("subscription", sub_id)


async def delete(request: web.Request) -> web.StreamResponse:
    """Remove a subscription: 202, or 404 if it is not there."""
    sub_id = _parse_id(request)

    def without(subscriptions: list[Subscription]) -> list[Subscription]:
        if not any(s.id == sub_id for s in subscriptions):
            raise errors.AdminError(404, f"not found in the schema registry: subscription with id '{sub_id}'")
        return [s for s in subscriptions if s.id != sub_id]

    await guarded(catalog.update_subscriptions(metadata_store(request), without))
    return web.Response(status=202)
