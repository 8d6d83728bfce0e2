"""``POST /query``: SQL introspection over the partition store, the schema and the invoker.

The body is ``{"query": "<sql>"}``. With ``Accept: application/json`` the answer is
``{"rows": [...]}``; with any other ``Accept`` it is an Arrow IPC stream, which is what the
``restate`` CLI asks for. Planning and execution run in a worker thread (the store scan can be
long), so the event loop keeps serving.

At most ``admin.query-engine.query-parallelism`` queries run at once, each with an equal share of
``memory-size``. A query past them waits for a slot, because the UI and the CLI send several queries
at once and upstream runs them all: refusing would break a page load. The wait is bounded: past
``QUEUED_PER_SLOT`` waiting queries per slot the answer is 429 at once, as upstream's admin API
answers overload, so a flood of queries queues no unbounded work.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from aiohttp import web

from restate_server import memory
from restate_server.admin import app as admin_app, errors
from restate_server.observability import metrics

if TYPE_CHECKING:
    from restate_server.admin.app import AdminContext
    from restate_server.admin.query import engine, tables

# engine, render and tables import datafusion and pyarrow (~45 MB resident): they are loaded on
# the first query, not at start-up, so an idle server stays small.

ARROW_CONTENT_TYPE = "application/vnd.apache.arrow.stream"
QUEUED_PER_SLOT = 8  # queries that may wait per running one before the next is refused


class Overloaded(Exception):
    """Every slot is busy and the waiting line is full."""


class QueryGate:
    """Admits at most ``slots`` queries at once and lets at most ``waiting`` more wait in line."""

    def __init__(self, slots: int, waiting: int) -> None:
        self._slots = asyncio.Semaphore(slots)  # binds to the serving loop on first contention
        self._room = slots + waiting
        self._admitted = 0  # running plus waiting

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the duration; ``Overloaded`` at once if the line is full."""
        if self._admitted >= self._room:
            raise Overloaded()
        self._admitted += 1
        try:
            async with self._slots:
                yield
        finally:
            self._admitted -= 1


def register(routes: admin_app.AdminRoutes) -> None:
    """Add ``POST /query``, with one gate for the application it is registered on."""
    gate: QueryGate | None = None

    async def query(request: web.Request) -> web.StreamResponse:
        nonlocal gate
        settings = admin_app.context(request).config.admin.query_engine
        if gate is None:
            slots = settings.query_parallelism
            gate = QueryGate(slots, slots * QUEUED_PER_SLOT)
        started, status = time.perf_counter(), 500
        try:
            response = await run_query(request, gate, query_limits(settings))
            status = response.status
            return response
        except (web.HTTPException, errors.AdminError, errors.PlainTextError) as exc:
            status = exc.status
            raise
        finally:
            metrics.QUERIES.labels(str(status)).inc()
            metrics.QUERY_DURATION.observe(time.perf_counter() - started)

    routes.add("POST", "/query", query)


def query_limits(settings: admin_app.QueryEngineConfig) -> engine.Limits:
    """One query's share of the engine's memory."""
    from restate_server.admin.query import engine

    share = max(1, settings.memory_size // settings.query_parallelism)
    return engine.Limits(memory_bytes=share, spill_dir=settings.tmp_dir)


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
        local=ctx.answers_for or (lambda _partition: True),
        remote=ctx.remote_scan,
    )


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


async def run_query(request: web.Request, gate: QueryGate, limits: engine.Limits) -> web.StreamResponse:
    """Run the query and answer JSON or Arrow."""
    from restate_server.admin.query import engine, render

    body = await admin_app.read_json(request)
    sql = body.get("query")
    if not isinstance(sql, str):
        reason = "missing field `query`" if sql is None else "query: invalid type, expected a string"
        raise admin_app.body_shape_error(reason)
    snapshot = sources(admin_app.context(request))
    try:
        async with gate.slot():
            result = await asyncio.to_thread(engine.execute, sql, snapshot, limits)
    except Overloaded:
        message = "Too many queries are running or waiting; retry later"
        return errors.json_response({"message": message}, status=429)
    except engine.QueryError as e:
        return errors.json_response({"message": e.message}, status=e.status)
    try:
        if request.headers.get("accept") == "application/json":
            return await _stream(request, render.json_rows(result), errors.JSON_CONTENT_TYPE)
        return await _stream(request, render.arrow_stream(result), ARROW_CONTENT_TYPE)
    finally:
        del result
        memory.trim_soon()  # the tables and the answer (possibly large) are freed by now


async def _stream(
    request: web.Request, chunks: Iterator[bytes | memoryview], content_type: str
) -> web.StreamResponse:
    """Write ``chunks`` as they are made; each is made in a worker thread (a batch of JSON rows can
    take long to render, and the event loop serves the ingress too)."""
    response = web.StreamResponse(headers={"content-type": content_type, "vary": "accept-encoding"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        await response.write(chunk)
    await response.write_eof()
    return response
