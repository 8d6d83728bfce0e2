"""The admin REST API application: routes, API-version prefixes, and error rendering.

Every route is served unprefixed and under ``/v2``, ``/v3`` and ``/v4``; the prefix is the admin API
version the client speaks (the CLI asks ``/version`` and then uses the highest), and a few answers
depend on it (registration defaults and statuses). ``/v1`` is refused as upstream does. Other
components add their routes through :class:`AdminRoutes` (``create_admin_app(ctx, extra=[...])``), so
they get the same prefixes and error handling without touching this module.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from restate_server.admin import errors
from restate_server.schema.options import ServerDefaults
from restate_server.schema.registry import SchemaRegistry
from restate_server.web import shedding

if TYPE_CHECKING:
    from restate_server.admin.query.tables import RemoteScan
    from restate_server.invoker.service import InvocationState
    from restate_server.metadata.api import MetadataStore
    from restate_server.worker.api import WorkerHandle

log = logging.getLogger(__name__)

MIN_ADMIN_API_VERSION = 2
MAX_ADMIN_API_VERSION = 4
UNKNOWN_API_VERSION = 0  # unprefixed paths
MAX_BODY_SIZE = 2 * 1024 * 1024  # axum's default body limit, which upstream's admin API keeps


class _IngressConfig(Protocol):
    @property
    def bind_address(self) -> str: ...
    @property
    def advertised_ingress_endpoint(self) -> str | None: ...


class QueryEngineConfig(Protocol):
    @property
    def memory_size(self) -> int: ...
    @property
    def tmp_dir(self) -> str | None: ...
    @property
    def query_parallelism(self) -> int: ...


class _AdminOptions(Protocol):
    @property
    def concurrent_api_requests_limit(self) -> int | None: ...
    @property
    def query_engine(self) -> QueryEngineConfig: ...


class AdminConfig(ServerDefaults, Protocol):
    """The configuration the admin API reads (``restate_server.config.Config`` satisfies it)."""

    @property
    def cluster_name(self) -> str: ...
    @property
    def ingress(self) -> _IngressConfig: ...
    @property
    def admin(self) -> _AdminOptions: ...


@dataclass(slots=True, kw_only=True)
class AdminContext:
    """What the admin handlers need; hooks are filled in by the node once the worker exists."""

    registry: SchemaRegistry
    config: AdminConfig
    ingress_endpoint: Callable[[], str] | None = None
    """The URL ``/version`` reports (the node knows the port really bound); else derived from config."""
    invocation_count_for_deployment: Callable[[str], int | Awaitable[int]] | None = None
    """How many invocations are pinned to a deployment (logged on forced deletes)."""
    server_version: str = "1.7.12"
    """The upstream release this server answers as; the CLI compares it with its own."""
    features: dict[str, bool] = field(default_factory=dict)
    worker: WorkerHandle | None = None
    """Appends invocation-management records and gives `/query` read access to the store."""
    invoker_states: Callable[[], Mapping[bytes, InvocationState]] | None = None
    """The invoker's in-memory attempt state per invocation id (`sys_invocation_state`)."""
    metadata: MetadataStore | None = None
    """Where subscriptions are kept (key ``subscriptions``)."""
    answers_for: Callable[[int], bool] | None = None
    """The partitions whose rows `/query` reads from this node's store (a cluster node: those it leads)."""
    remote_scan: RemoteScan | None = None
    """Rows of the other partitions, from their leaders (a cluster node)."""
    metadata_members: Callable[[], Awaitable[list[int] | None]] | None = None
    """Node ids of the embedded metadata cluster (None: etcd holds the metadata); unset: node 1 alone."""


CONTEXT: web.AppKey[AdminContext] = web.AppKey("admin_context", AdminContext)
API_VERSION: web.RequestKey[int] = web.RequestKey("admin_api_version", int)  # the prefix's version

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def context(request: web.Request) -> AdminContext:
    """The admin context of a request."""
    return request.app[CONTEXT]


def api_version(request: web.Request) -> int:
    """The admin API version of the request's prefix (0 for an unprefixed path)."""
    version: int = request.get(API_VERSION, UNKNOWN_API_VERSION)
    return version


class AdminRoutes:
    """Registers a route under every supported prefix."""

    PREFIXES = {"": UNKNOWN_API_VERSION} | {
        f"/v{v}": v for v in range(MIN_ADMIN_API_VERSION, MAX_ADMIN_API_VERSION + 1)
    }

    def __init__(self, router: web.UrlDispatcher) -> None:
        self._router = router

    def add(self, method: str, path: str, handler: Handler) -> None:
        """Serve ``method path`` (``path`` starts with ``/``) at ``/`` and at each ``/vN`` prefix."""
        for prefix, version in self.PREFIXES.items():
            self._router.add_route(method, prefix + path, _versioned(handler, version))


def _versioned(handler: Handler, version: int) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        request[API_VERSION] = version
        return await handler(request)

    wrapper.__name__ = getattr(handler, "__name__", "handler")
    return wrapper


async def read_json(request: web.Request) -> dict[str, Any]:
    """The JSON object body, refused as axum's ``Json`` extractor refuses (415, 400, 422; plain text)."""
    content_type = request.headers.get("content-type", "")
    mime = content_type.split(";", 1)[0].strip().lower()
    if not (mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))):
        raise errors.PlainTextError(415, "Expected request with `Content-Type: application/json`")
    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise errors.PlainTextError(400, f"Failed to parse the request body as JSON: {e}") from e
    except RecursionError as e:  # serde_json stops at depth 128 with this message
        raise errors.PlainTextError(
            400, "Failed to parse the request body as JSON: recursion limit exceeded"
        ) from e
    if not isinstance(body, dict):
        raise body_shape_error("invalid type: expected a JSON object")
    return body


def body_shape_error(reason: str) -> errors.PlainTextError:
    """422 for a well-formed body of the wrong shape."""
    return errors.PlainTextError(422, f"Failed to deserialize the JSON body into the target type: {reason}")


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return _http_error(request, e).response()
    except Exception as e:
        rendered = errors.translate(e)
        if rendered is None:  # a failure of ours (a store write refused: the disk is full, ...)
            log.exception("admin %s %s failed", request.method, request.path)
            return errors.AdminError(500, f"Internal server error: {e}").response()
        if rendered.status >= 500:
            log.warning("admin %s %s failed: %s", request.method, request.path, e)
        return rendered.response()


def _http_error(request: web.Request, error: web.HTTPException) -> errors.AdminError:
    """aiohttp's own refusals (no route, wrong method, body too large) in the admin error shape.

    Upstream's axum answers an unknown route with an empty 404, which the CLI reports as a JSON
    parse error; a message says what went wrong instead.
    """
    match error:
        case web.HTTPNotFound():
            return errors.AdminError(
                404, f"The requested route '{request.method} {request.path}' does not exist"
            )
        case web.HTTPMethodNotAllowed():
            allowed = ", ".join(sorted(error.allowed_methods))
            rendered = errors.AdminError(
                405, f"Method {request.method} is not allowed on '{request.path}'; allowed: {allowed}"
            )
            rendered.headers["allow"] = allowed
            return rendered
        case web.HTTPRequestEntityTooLarge():
            return errors.AdminError(413, "Failed to buffer the request body: length limit exceeded")
        case _:
            return errors.AdminError(error.status, error.reason)


def _overloaded() -> web.StreamResponse:
    return errors.AdminError(429, "Too many requests, the admin API is overloaded. Retry later.").response()


async def _unsupported_version(request: web.Request) -> web.StreamResponse:
    return web.Response(
        status=400,
        text=(
            f"Unsupported Admin API version V1. This server supports versions between "
            f"V{MIN_ADMIN_API_VERSION} and V{MAX_ADMIN_API_VERSION}."
        ),
    )


def create_admin_app(
    ctx: AdminContext, *, extra: Iterable[Callable[[AdminRoutes], None]] = ()
) -> web.Application:
    """The admin API application over ``ctx``; ``extra`` functions register more routes."""
    from restate_server.admin import deployments, meta, services

    limit = ctx.config.admin.concurrent_api_requests_limit
    app = web.Application(
        client_max_size=MAX_BODY_SIZE,
        middlewares=[*shedding.load_shed(limit, _overloaded), _error_middleware],
    )
    app[CONTEXT] = ctx
    routes = AdminRoutes(app.router)
    for register in (meta.register, deployments.register, services.register, *extra):
        register(routes)
    app.router.add_route("*", "/v1", _unsupported_version)
    app.router.add_route("*", "/v1/{tail:.*}", _unsupported_version)
    app.router.add_get("/", meta.root_redirect)
    return app
