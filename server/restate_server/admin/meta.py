"""The admin API's own endpoints: health, version, cluster health, OpenAPI, and the UI redirect."""

from __future__ import annotations

from aiohttp import web

from restate_server.admin import app as admin_app, errors, openapi as admin_openapi
from restate_server.admin.errors import json_response

# Upstream 1.7's experimental feature flags, all off here; the CLI and UI only read them.
FEATURES = (
    "vqueues_migration_skip_completed",
    "invoker_yield",
    "protocol_v7",
    "scoped_promise_table_migration",
    "scoped_virtual_objects",
    "preflight_invocation_termination_retention",
    "vqueues_async_refill",
    "vqueue_obsolete_cleanup",
    "kafka_scope",
    "unique_random_seeds",
    "vqueues",
    "scoped_state_table_migration",
)


def ingress_endpoint(ctx: admin_app.AdminContext) -> str:
    """The ingress URL to advertise: the node's hook, the configured one, or the bind address."""
    if ctx.ingress_endpoint is not None:
        url = ctx.ingress_endpoint()
    elif ctx.config.ingress.advertised_ingress_endpoint:
        url = ctx.config.ingress.advertised_ingress_endpoint
    else:
        host, _, port = ctx.config.ingress.bind_address.rpartition(":")
        host = host.strip("[]")
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    return url if url.endswith("/") else url + "/"


async def health(request: web.Request) -> web.StreamResponse:
    """``GET /health``: 200 with an empty body; 503 while the node cannot serve or is stopping."""
    worker = admin_app.context(request).worker
    if worker is not None and not worker.ready():
        return errors.AdminError(503, "the node is not ready").response()
    return web.Response(status=200)


async def version(request: web.Request) -> web.StreamResponse:
    """``GET /version``: server version, admin API range, ingress URL and feature flags."""
    ctx = admin_app.context(request)
    features = {name: False for name in FEATURES} | ctx.features
    return json_response(
        {
            "version": ctx.server_version,
            "min_admin_api_version": admin_app.MIN_ADMIN_API_VERSION,
            "max_admin_api_version": admin_app.MAX_ADMIN_API_VERSION,
            "ingress_endpoint": ingress_endpoint(ctx),
            "features": features,
        }
    )


async def cluster_health(request: web.Request) -> web.StreamResponse:
    """``GET /cluster-health``: the members of the embedded metadata cluster, as upstream reports them
    (null when the metadata lives outside the nodes, in etcd)."""
    ctx = admin_app.context(request)
    members = [1] if ctx.metadata_members is None else await ctx.metadata_members()
    health = None if members is None else {"members": members}
    return json_response({"cluster_name": ctx.config.cluster_name, "metadata_cluster_health": health})


async def openapi(request: web.Request) -> web.StreamResponse:
    """``GET /openapi``: the admin API's OpenAPI 3.1 document."""
    return json_response(admin_openapi.document(request.app, admin_app.context(request).server_version))


async def root_redirect(request: web.Request) -> web.StreamResponse:
    """``GET /``: to the web UI, as upstream."""
    return web.Response(status=308, headers={"location": "/ui/"})


def register(routes: admin_app.AdminRoutes) -> None:
    """Add this module's routes."""
    routes.add("GET", "/health", health)
    routes.add("GET", "/version", version)
    routes.add("GET", "/cluster-health", cluster_health)
    routes.add("GET", "/openapi", openapi)
