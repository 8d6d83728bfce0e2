"""``/services``: the latest revision of each service and its handlers, admin overrides, and state.

Overrides set with ``PATCH /services/{service}`` last until the next registration of the service,
as upstream (the new revision starts from what the endpoint declares). ``POST
/services/{service}/state`` replaces the whole state of one object key through the log; a stale
``version`` makes the partition drop the change (still 202, as upstream).
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from restate_server.admin import app as admin_app, errors, meta, model
from restate_server.admin.errors import json_response
from restate_server.config.units import parse_duration
from restate_server.ids import partition_key_for
from restate_server.log.records import PatchState
from restate_server.schema import openapi
from restate_server.schema.registry import ServiceChanges

_DURATION_FIELDS = (
    "idempotency_retention",
    "workflow_completion_retention",
    "journal_retention",
    "inactivity_timeout",
    "abort_timeout",
    "state_history_retention",
)


def _service_json(request: web.Request, name: str) -> dict[str, Any]:
    ctx = admin_app.context(request)
    service = ctx.registry.service(name)
    if service is None:
        raise errors.not_found("service", name)
    deployment = ctx.registry.deployment(service.deployment_id)
    protocol = None if deployment is None else deployment.protocol_type
    return model.service_metadata(service, protocol, ctx.config)


async def list_services(request: web.Request) -> web.StreamResponse:
    """``GET /services``."""
    registry = admin_app.context(request).registry
    return json_response({"services": [_service_json(request, s.name) for s in registry.services()]})


async def get_service(request: web.Request) -> web.StreamResponse:
    """``GET /services/{service}``."""
    return json_response(_service_json(request, request.match_info["service"]))


def _changes(body: dict[str, Any]) -> ServiceChanges:
    public = body.get("public")
    if public is not None and not isinstance(public, bool):
        raise admin_app.body_shape_error("public: invalid type: expected a boolean")
    durations: dict[str, float] = {}
    for key in _DURATION_FIELDS:
        value = body.get(key)
        if value is None:
            continue
        try:
            if not isinstance(value, str):
                raise ValueError(f"invalid type: {type(value).__name__}, expected a duration string")
            durations[key] = parse_duration(value)
        except ValueError as e:
            raise admin_app.body_shape_error(f"{key}: {e}") from e
    return ServiceChanges(public=public, **durations)


async def modify_service(request: web.Request) -> web.StreamResponse:
    """``PATCH /services/{service}``: visibility, retentions (and the state history's) and timeouts."""
    ctx = admin_app.context(request)
    name = request.match_info["service"]
    changes = _changes(await admin_app.read_json(request))
    if changes.empty:
        return json_response(_service_json(request, name))
    await ctx.registry.modify_service(name, changes)
    return json_response(_service_json(request, name))


async def list_handlers(request: web.Request) -> web.StreamResponse:
    """``GET /services/{service}/handlers``."""
    return json_response({"handlers": _service_json(request, request.match_info["service"])["handlers"]})


async def get_handler(request: web.Request) -> web.StreamResponse:
    """``GET /services/{service}/handlers/{handler}``."""
    service, handler = request.match_info["service"], request.match_info["handler"]
    for doc in _service_json(request, service)["handlers"]:
        if doc["name"] == handler:
            return json_response(doc)
    raise errors.AdminError(404, f"The requested handler '{handler}' on service '{service}' does not exist")


async def get_service_openapi(request: web.Request) -> web.StreamResponse:
    """``GET /services/{service}/openapi``: the OpenAPI 3.1 contract of the service's public handlers."""
    ctx = admin_app.context(request)
    name = request.match_info["service"]
    service = ctx.registry.service(name)
    if service is None:
        raise errors.not_found("service", name)
    return json_response(openapi.service_openapi(service, meta.ingress_endpoint(ctx)))


def _state_bytes(name: str, value: Any) -> bytes:
    """A ``new_state`` value as serde reads ``Bytes``: an array of bytes, or a string's UTF-8."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, list) and all(isinstance(b, int) and not isinstance(b, bool) for b in value):
        if all(0 <= b <= 255 for b in value):
            return bytes(value)
        raise admin_app.body_shape_error(f"new_state.{name}: invalid value: integer out of range for u8")
    raise admin_app.body_shape_error(f"new_state.{name}: invalid type: expected a byte array")


def _state_request(body: dict[str, Any]) -> tuple[str, str | None, dict[bytes, bytes]]:
    """(object key, expected version, new state) of a ``ModifyServiceStateRequest``."""
    for required in ("object_key", "new_state"):
        if required not in body:
            raise admin_app.body_shape_error(f"missing field `{required}`")
    key, version, new_state = body["object_key"], body.get("version"), body["new_state"]
    if not isinstance(key, str):
        raise admin_app.body_shape_error("object_key: invalid type: expected a string")
    if version is not None and not isinstance(version, str):
        raise admin_app.body_shape_error("version: invalid type: expected a string")
    if not isinstance(new_state, dict):
        raise admin_app.body_shape_error("new_state: invalid type: expected a map")
    return key, version, {name.encode(): _state_bytes(name, v) for name, v in new_state.items()}


async def modify_service_state(request: web.Request) -> web.StreamResponse:
    """``POST /services/{service}/state``: 202 once the replacement is in the log."""
    ctx = admin_app.context(request)
    name = request.match_info["service"]
    key, version, new_state = _state_request(await admin_app.read_json(request))
    service = ctx.registry.service(name)
    if service is not None and not service.ty.keyed:
        raise errors.AdminError(400, f"Cannot modify state for service type {service.ty}")
    if service is None and new_state:  # clearing the state of a removed service is allowed
        raise errors.not_found("service", name)
    if ctx.worker is None:
        raise errors.AdminError(
            500, "Internal server error: Failed sending state patching command to the cluster."
        )
    record = PatchState(
        service=name, key=key, new_state=new_state, expected_version=version, now=int(time.time() * 1000)
    )
    await ctx.worker.append(ctx.worker.partition_for(partition_key_for(key)), [record])
    return web.Response(status=202)


def register(routes: admin_app.AdminRoutes) -> None:
    """Add this module's routes."""
    routes.add("GET", "/services", list_services)
    routes.add("GET", "/services/{service}", get_service)
    routes.add("PATCH", "/services/{service}", modify_service)
    routes.add("GET", "/services/{service}/openapi", get_service_openapi)
    routes.add("POST", "/services/{service}/state", modify_service_state)
    routes.add("GET", "/services/{service}/handlers", list_handlers)
    routes.add("GET", "/services/{service}/handlers/{handler}", get_handler)
