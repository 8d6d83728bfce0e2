"""The HTTP ingress (port 8080): calls, sends, attach/output, lookup, awakeables, health.

The app only translates HTTP to records and back; the partition processors decide everything
(dedup, locking, scheduling). Paths are parsed as upstream parses them (`paths`), each route kind is
served by its module (`calls`, `invocations`), and errors are `IngressError`s rendered here, once,
in the real server's JSON shape. CORS wraps everything (`cors`), then load shedding.
"""

from __future__ import annotations

from aiohttp import web

from restate_server.config import Config
from restate_server.ingress import calls, cors, invocations, paths, responses
from restate_server.ingress.context import IngressContext
from restate_server.ingress.errors import IngressError, MethodNotAllowed, TooManyRequests, Unavailable
from restate_server.observability import metrics
from restate_server.schema.model import ServiceType
from restate_server.schema.registry import SchemaRegistry
from restate_server.web import shedding
from restate_server.worker.api import WorkerHandle, WorkerUnavailable


def _overloaded() -> web.Response:
    metrics.INGRESS_REQUESTS.labels(metrics.REQUEST_RATE_LIMITED, "", "").inc()
    error = TooManyRequests()
    return responses.error(error.status, error.message, error.source)


class Ingress:
    def __init__(self, config: Config, registry: SchemaRegistry, worker: WorkerHandle) -> None:
        self.ctx = IngressContext(config=config, registry=registry, worker=worker)

    def app(self) -> web.Application:
        ingress = self.ctx.config.ingress
        app = web.Application(
            client_max_size=ingress.request_size_limit,
            middlewares=[cors.cors, *shedding.load_shed(ingress.concurrent_api_requests_limit, _overloaded)],
        )
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        metrics.INGRESS_REQUESTS.labels(metrics.REQUEST_ADMITTED, "", "").inc()
        try:
            route = paths.parse(paths.normalise(request.raw_path.partition("?")[0]), self._is_keyed)
            return await self._serve(request, route)
        except IngressError as exc:
            return responses.error(exc.status, exc.message, exc.source)
        except WorkerUnavailable as exc:  # not taken (no leader, the log refused): the client may retry
            return responses.error(Unavailable.status, str(exc), "ingress")

    async def _serve(self, request: web.Request, route: paths.Route) -> web.StreamResponse:
        match route:
            case paths.Health():
                if request.method != "GET":
                    raise MethodNotAllowed()
                if self.ctx.worker is not None and not self.ctx.worker.ready():  # None: no partitions
                    raise Unavailable("the node is not ready")
                services = [s.name for s in self.ctx.registry.services()]
                return responses.json_response(200, {"services": services})
            case paths.ServiceCall():
                return await calls.observed_call(self.ctx, request, route)
            case paths.InvocationRequest():
                return await invocations.invocation(self.ctx, request, route)
            case paths.Lookup():
                return await invocations.lookup(self.ctx, request)
            case paths.Awakeable():
                return await invocations.awakeable(self.ctx, request, route)

    def _is_keyed(self, name: str) -> bool | None:
        service = self.ctx.registry.service(name)
        return None if service is None else service.ty != ServiceType.SERVICE
