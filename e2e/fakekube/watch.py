"""Watch streams: newline-delimited JSON events, resumable from a resourceVersion.

Without a resourceVersion (or with "0") the stream starts with a synthetic ADDED per existing object;
with one, it replays the history after it (an ERROR event with 410 Expired when that history is gone).
With a label or field selector, an object that starts or stops matching arrives as ADDED or DELETED,
as the real server reports it. Bookmarks are sent while idle when the client allows them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .resources import ResourceType
from .store import Event, JsonObj, Store, meta

BOOKMARK_INTERVAL = 5.0
"""Seconds of silence before a BOOKMARK event, when the client sent ``allowWatchBookmarks``."""
DEFAULT_TIMEOUT = 1800.0
"""Seconds a watch lasts without ``timeoutSeconds`` (the real server picks 30 to 60 minutes)."""

Visible = Callable[[JsonObj | None], bool]


def _translate(rt: ResourceType, event: Event, visible: Visible) -> tuple[str, JsonObj] | None:
    if event.key != rt.key:
        return None
    was = visible(event.old)
    now = event.type != "DELETED" and visible(event.obj)
    if now and was:
        return ("MODIFIED", event.obj)
    if now:
        return ("ADDED", event.obj)
    if was:
        return ("DELETED", event.obj)
    return None


def _expired(rv: str) -> JsonObj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"too old resource version: {rv}",
        "reason": "Expired",
        "code": 410,
    }


async def serve(
    request: web.Request,
    store: Store,
    rt: ResourceType,
    visible: Visible,
    present: Callable[[JsonObj], JsonObj],
) -> web.StreamResponse:
    params = request.query
    rv = params.get("resourceVersion", "")
    bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
    timeout = float(params.get("timeoutSeconds") or DEFAULT_TIMEOUT)
    queue = store.subscribe()
    try:
        initial: list[tuple[str, JsonObj]]
        if rv in ("", "0"):
            initial = [("ADDED", o) for o in store.objects_of(rt.key) if visible(o)]
        else:
            events = store.events_since(int(rv))
            if events is None:
                initial = [("ERROR", _expired(rv))]
            else:
                initial = [t for e in events if (t := _translate(rt, e, visible)) is not None]
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)

        async def send(kind: str, obj: JsonObj) -> None:
            body: dict[str, Any] = {"type": kind, "object": obj if kind == "ERROR" else present(obj)}
            await response.write(json.dumps(body).encode() + b"\n")

        for kind, obj in initial:
            await send(kind, obj)
        if initial and initial[0][0] == "ERROR":
            return response
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (remaining := deadline - loop.time()) > 0:
            try:
                event = await asyncio.wait_for(queue.get(), min(remaining, BOOKMARK_INTERVAL))
            except TimeoutError:
                if bookmarks:
                    mark = {
                        "apiVersion": rt.api_version,
                        "kind": rt.kind,
                        "metadata": {"resourceVersion": str(store.rv)},
                    }
                    await response.write(json.dumps({"type": "BOOKMARK", "object": mark}).encode() + b"\n")
                continue
            if event is None:
                break
            if (t := _translate(rt, event, visible)) is not None:
                await send(*t)
        return response
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    finally:
        store.unsubscribe(queue)


def visibility(
    namespace: str | None, label: Callable[[JsonObj], bool], field: Callable[[JsonObj], bool]
) -> Visible:
    def visible(obj: JsonObj | None) -> bool:
        if obj is None:
            return False
        if namespace is not None and meta(obj).get("namespace") != namespace:
            return False
        return label(obj) and field(obj)

    return visible
