"""Load shedding: a request past the concurrency limit is answered at once instead of queued.

Upstream puts tower's `LoadShedLayer` over a concurrency limit (`ingress.` and
`admin.concurrent-api-requests-limit`) and answers 429; each application renders its own 429 body, so
the answer is built by the caller's `overloaded`. A request counts until its handler returns, which for
a streamed answer is when the stream ends.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware


def load_shed(limit: int | None, overloaded: Callable[[], web.StreamResponse]) -> list[Middleware]:
    """The middleware that enforces ``limit`` (none when ``limit`` is None: unlimited)."""
    if limit is None:
        return []
    in_flight = 0

    @web.middleware
    async def shed(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal in_flight
        if in_flight >= limit:
            return overloaded()
        in_flight += 1
        try:
            return await handler(request)
        finally:
            in_flight -= 1

    return [shed]
