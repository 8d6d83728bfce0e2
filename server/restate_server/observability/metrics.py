"""Prometheus metrics, defined once, and the node port's app (`/metrics`, `/health`)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

INGRESS_REQUESTS = Counter("restate_ingress_requests", "Ingress requests", ["status", "rpc_service"])
INVOKER_TASKS = Counter("restate_invoker_invocation_task", "Invocation attempts started", ["outcome"])


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"content-type": CONTENT_TYPE_LATEST})


def node_app(ready: Callable[[], bool] = lambda: True) -> web.Application:
    """`/metrics`, and `/health`: 200 while `ready()`, else 503 (the node cannot serve, or is stopping)."""

    async def health(request: web.Request) -> web.Response:
        return web.Response(status=200 if ready() else 503)

    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/health", health)
    return app
