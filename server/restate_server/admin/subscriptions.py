"""Kafka subscriptions: create, list, get and delete, kept in the metadata store.

A subscription binds a topic of a configured Kafka cluster (``kafka://<cluster>/<topic>``) to a
handler (``service://<Service>/<handler>``). The set lives under one metadata key as JSON and is
changed with compare-and-set, so concurrent admin requests (or nodes) never lose each other's
writes. Validation follows upstream 1.7: bad URIs and unknown sinks are META0009, an unconfigured
cluster is a plain 400 naming the available ones. Consuming the topics is not done here.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from restate_server.admin import app as admin_app, errors
from restate_server.ids import IdError, SubscriptionId
from restate_server.metadata.api import ABSENT, MetadataStore, PreconditionFailed

SUBSCRIPTIONS_KEY = "subscriptions"
_CAS_ATTEMPTS = 8  # only concurrent admin writes make us retry; a few rounds settle it
_INVALID_URI_CHARS = frozenset(' "<>\\^`{|}')

Subscription = dict[str, Any]  # {"id", "source", "sink", "options": {str: str}}


def register(routes: admin_app.AdminRoutes) -> None:
    """Add the subscription routes."""
    routes.add("POST", "/subscriptions", create)
    routes.add("GET", "/subscriptions", list_subscriptions)
    routes.add("GET", "/subscriptions/{subscription}", get)
    routes.add("DELETE", "/subscriptions/{subscription}", delete)


def _store(request: web.Request) -> MetadataStore:
    store = admin_app.context(request).metadata
    if store is None:
        raise errors.AdminError(503, "The metadata store is not available")
    return store


async def _load(store: MetadataStore) -> tuple[int, list[Subscription]]:
    stored = await store.get(SUBSCRIPTIONS_KEY)
    if stored is None:
        return ABSENT, []
    return stored.version, list(json.loads(stored.value))


async def _update(store: MetadataStore, change: Any) -> None:
    """Apply ``change(list) -> list`` with compare-and-set, retrying on concurrent writes."""
    for _ in range(_CAS_ATTEMPTS):
        version, current = await _load(store)
        new = change(current)
        payload = json.dumps(new, separators=(",", ":")).encode()
        try:
            await store.put(SUBSCRIPTIONS_KEY, payload, expected_version=version)
            return
        except PreconditionFailed:
            continue
    raise errors.AdminError(500, "internal error: the subscriptions kept changing concurrently")


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


def _validate_source(request: web.Request, source: str) -> None:
    parts = urlsplit(source)
    if parts.scheme != "kafka" or not parts.netloc:
        raise _meta0009(
            f"invalid source URI '{source}': must have a scheme segment, with supported schemes: [kafka]."
        )
    config = admin_app.context(request).config
    # the admin config protocol does not require Kafka settings; the node's Config has them
    clusters = [c.name for c in getattr(config.ingress, "kafka_clusters", [])]
    if parts.netloc not in clusters:
        available = "[" + ", ".join(json.dumps(c) for c in clusters) + "]"
        raise errors.AdminError(
            400, f"Kafka cluster '{parts.netloc}' not found. Available clusters: {available}"
        )


def _validate_sink(request: web.Request, sink: str) -> None:
    parts = urlsplit(sink)
    if parts.scheme != "service" or not parts.netloc:
        raise _meta0009(
            f"invalid sink URI '{sink}': must have a scheme segment, with supported schemes: [service]."
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
    _validate_source(request, source)
    _validate_sink(request, sink)
    sub_id = str(SubscriptionId.generate())
    subscription: Subscription = {
        "id": sub_id,
        "source": source,
        "sink": sink,
        "options": {
            **options,
            "group.id": options.get("group.id", sub_id),
            "client.id": options.get("client.id", "restate"),
        },
    }
    await _update(_store(request), lambda current: [*current, subscription])
    return errors.json_response(subscription, status=201)


async def list_subscriptions(request: web.Request) -> web.StreamResponse:
    """All subscriptions, optionally only those with exactly the given ``sink`` and/or ``source``."""
    _, current = await _load(_store(request))
    sink, source = request.query.get("sink"), request.query.get("source")
    selected = [
        s
        for s in current
        if (sink is None or s["sink"] == sink) and (source is None or s["source"] == source)
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
    _, current = await _load(_store(request))
    for subscription in current:
        if subscription["id"] == sub_id:
            return errors.json_response(subscription)
    raise errors.not_found("subscription", sub_id)


async def delete(request: web.Request) -> web.StreamResponse:
    """Remove a subscription: 202, or 404 if it is not there."""
    sub_id = _parse_id(request)
    store = _store(request)
    _, current = await _load(store)
    if not any(s["id"] == sub_id for s in current):
        raise errors.AdminError(404, f"not found in the schema registry: subscription with id '{sub_id}'")
    await _update(store, lambda subs: [s for s in subs if s["id"] != sub_id])
    return web.Response(status=202)
