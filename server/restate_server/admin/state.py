"""``POST /services/{service}/state``: replace the whole state of one virtual object or workflow key.

The edit is a `PatchState` record in the key's partition log, answered 202 once it is durable; the
processor drops it if ``version`` no longer matches the state (upstream's optimistic edit of
`restate kv edit`), and records it in the state history otherwise. The body is upstream's
``ModifyServiceStateRequest``: ``object_key``, optional ``version``, and ``new_state`` mapping each
state key to its value as a JSON array of bytes.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from restate_server.admin import app as admin_app, errors
from restate_server.ids import partition_key_for
from restate_server.log.records import PatchState
from restate_server.schema import model


def register(routes: admin_app.AdminRoutes) -> None:
    """Add the state-edit route."""
    routes.add("POST", "/services/{service}/state", modify_state)


def _new_state(value: Any) -> dict[bytes, bytes]:
    if not isinstance(value, dict):
        raise admin_app.body_shape_error("new_state: invalid type: expected a map")
    state = {}
    for name, content in value.items():
        if not isinstance(content, list) or not all(isinstance(b, int) and 0 <= b <= 255 for b in content):
            raise admin_app.body_shape_error(f"new_state.{name}: invalid type: expected a sequence of bytes")
        state[name.encode()] = bytes(content)
    return state


async def modify_state(request: web.Request) -> web.StreamResponse:
    ctx = admin_app.context(request)
    name = request.match_info["service"]
    service = ctx.registry.service(name)
    if service is None:
        raise errors.not_found("service", name)
    if service.ty is model.ServiceType.SERVICE:
        raise errors.AdminError(
            400, f"The service '{name}' has no state: it is not a virtual object or workflow"
        )
    body = await admin_app.read_json(request)
    key, version = body.get("object_key"), body.get("version")
    if not isinstance(key, str):
        raise admin_app.body_shape_error("object_key: missing field or not a string")
    if version is not None and not isinstance(version, str):
        raise admin_app.body_shape_error("version: invalid type: expected a string")
    record = PatchState(
        service=name,
        key=key,
        new_state=_new_state(body.get("new_state")),
        expected_version=version,
        now=int(time.time() * 1000),
    )
    if ctx.worker is None:
        raise errors.AdminError(503, "Error when routing the request internally. Reason: no worker")
    worker = ctx.worker
    await worker.append(worker.partition_for(partition_key_for(key)), [record])
    return web.Response(status=202)
