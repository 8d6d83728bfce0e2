"""CORS as upstream's ingress has it: tower-http's `CorsLayer::very_permissive()`.

Every answer carries `vary` and `access-control-allow-credentials: true`, and mirrors the request's
`origin`; any `OPTIONS` request is a preflight, answered 200 at once with the requested method and
headers mirrored back. It sits outside load shedding, as upstream's layer does.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

VARY = "origin, access-control-request-method, access-control-request-headers"
_MIRRORED = (
    ("access-control-request-method", "access-control-allow-methods"),
    ("access-control-request-headers", "access-control-allow-headers"),
)


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "OPTIONS":
        response: web.StreamResponse = web.Response(status=200)
        for asked, allowed in _MIRRORED:
            if (value := request.headers.get(asked)) is not None:
                response.headers[allowed] = value
    else:
        response = await handler(request)
    if not response.prepared:
        response.headers["vary"] = VARY
        response.headers["access-control-allow-credentials"] = "true"
        if (origin := request.headers.get("origin")) is not None:
            response.headers["access-control-allow-origin"] = origin
    return response
