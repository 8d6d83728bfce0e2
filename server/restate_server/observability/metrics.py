"""Prometheus metrics, defined once, and the node port's app (`/metrics`, `/health`)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest

INGRESS_REQUESTS = Counter("restate_ingress_requests", "Ingress requests", ["status", "rpc_service"])
INVOKER_TASKS = Counter("restate_invoker_invocation_task", "Invocation attempts started", ["outcome"])
REPLAY_STREAMS = Gauge("restate_replay_streams", "Replay API streams open")
REPLAY_EVENTS_READ = Counter(
    "restate_replay_events_read", "State history events the Replay API read from the partition store"
)

# Kafka ingress: upstream's `restate.kafka_ingress.requests.total` and `restate.kafka_ingress.consumer.lag`.
KAFKA_INGRESS_REQUESTS = Counter(
    "restate_kafka_ingress_requests",
    "Kafka records made durable as invocations",
    ["subscription", "topic", "partition"],
)
KAFKA_INGRESS_CONSUMER_LAG = Gauge(
    "restate_kafka_ingress_consumer_lag",
    "Kafka consumer lag per partition: records on the broker not yet durable as invocations",
    ["subscription", "topic", "partition"],
)
# Ours: broker and consumer failures (retried with backoff) and backpressure, per subscription.
KAFKA_INGRESS_ERRORS = Counter(
    "restate_kafka_ingress_errors",
    "Kafka broker errors and consumer restarts",
    ["subscription", "error"],
)
KAFKA_INGRESS_PAUSED = Gauge(
    "restate_kafka_ingress_paused",
    "1 while a subscription's consumption is paused by backpressure",
    ["subscription"],
)


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
