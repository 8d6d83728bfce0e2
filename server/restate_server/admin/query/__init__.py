"""``POST /query``: SQL introspection over the partition store, the schema and the invoker.

The body is ``{"query": "<sql>"}``. With ``Accept: application/json`` the answer is
``{"rows": [...]}``; with any other ``Accept`` it is an Arrow IPC stream, which is what the
``restate`` CLI asks for. Planning and execution run in a worker thread (the store scan can be
long), and a semaphore bounds how many run at once, so the event loop keeps serving and memory
stays bounded by a few materialised snapshots.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiohttp import web

from restate_server.admin import app as admin_app, errors

if TYPE_CHECKING:
    from restate_server.admin.app import AdminContext
    from restate_server.admin.query import tables

# engine, render and tables import datafusion and pyarrow (~45 MB resident): they are loaded on
# the first query, not at start-up, so an idle server stays small.

ARROW_CONTENT_TYPE = "application/vnd.apache.arrow.stream"
CONCURRENT_QUERIES = 4  # each query holds a snapshot of the tables it names in memory
_LIMIT = asyncio.Semaphore(CONCURRENT_QUERIES)  # binds to the serving loop on first contention


def register(routes: admin_app.AdminRoutes) -> None:
    """Add ``POST /query``."""
    routes.add("POST", "/query", query)


def sources(ctx: AdminContext) -> tables.Sources:
    """A snapshot of the in-memory inputs, taken on the event loop; the store is read later."""
    from restate_server.admin.query import tables

    worker = ctx.worker
    attempts = {}
    if ctx.invoker_states is not None:
        for invocation_id, state in list(ctx.invoker_states().items()):
            live = state.attempt
            attempts[invocation_id] = tables.AttemptState(
                # upstream counts attempts started; the invoker counts the failed ones
                in_flight=state.in_flight,
                retry_count=state.attempts + (1 if state.in_flight else 0),
                last_start_at=_ms(state.last_start_at),
                next_retry_at=_ms(state.next_retry_at),
                last_failure=state.last_failure,
                last_failure_code=state.last_failure_code,
                server=state.server or (live.server_header if live is not None else None),
            )
    return tables.Sources(
        db=worker.db if worker is not None else None,
        num_partitions=worker.num_partitions if worker is not None else 0,
        deployments=ctx.registry.deployments(),
        services=ctx.registry.services(),
        attempts=attempts,
    )


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


async def query(request: web.Request) -> web.StreamResponse:
    """Run the query and answer JSON or Arrow."""
    from restate_server.admin.query import engine, render

    body = await admin_app.read_json(request)
    sql = body.get("query")
    if not isinstance(sql, str):
        reason = "missing field `query`" if sql is None else "query: invalid type, expected a string"
        raise admin_app.body_shape_error(reason)
    snapshot = sources(admin_app.context(request))
    async with _LIMIT:
        try:
            result = await asyncio.to_thread(engine.execute, sql, snapshot)
        except engine.QueryError as e:
            return errors.json_response({"message": e.message}, status=e.status)
    if request.headers.get("accept") == "application/json":
        return await _stream(request, render.json_rows(result), errors.JSON_CONTENT_TYPE)
    data = await asyncio.to_thread(render.arrow_stream, result)
    return await _stream(request, iter([data]), ARROW_CONTENT_TYPE)


async def _stream(request: web.Request, chunks: Iterable[bytes], content_type: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": content_type, "vary": "accept-encoding"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response
