"""``/services``: the latest revision of each service and its handlers, and admin overrides.

Overrides set with ``PATCH /services/{service}`` last until the next registration of the service,
as upstream (the new revision starts from what the endpoint declares).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from restate_server.admin import app as admin_app, errors, meta, model
from restate_server.admin.errors import json_response
from restate_server.config.units import parse_duration
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


def _operation(handler: dict[str, Any], summary: str, *, send: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "operationId": handler["name"] + ("Send" if send else ""),
        "responses": {"202" if send else "200": {"description": "Accepted" if send else "Success"}},
    }
    schema = handler.get("input_json_schema")
    if schema is not None:
        operation["requestBody"] = {"content": {"application/json": {"schema": schema}}, "required": False}
    output = handler.get("output_json_schema")
    if output is not None and not send:
        operation["responses"]["200"]["content"] = {"application/json": {"schema": output}}
    return operation


async def get_service_openapi(request: web.Request) -> web.StreamResponse:
    """``GET /services/{service}/openapi``: an OpenAPI 3.1 contract of the service's public handlers."""
    name = request.match_info["service"]
    service = _service_json(request, name)
    keyed = service["ty"] != "Service"
    base = f"/{name}/{{key}}" if keyed else f"/{name}"
    paths: dict[str, Any] = {}
    for handler in service["handlers"]:
        if not handler["public"]:
            continue
        summary = handler.get("documentation", handler["name"])
        paths[f"{base}/{handler['name']}"] = {"post": _operation(handler, summary, send=False)}
        paths[f"{base}/{handler['name']}/send"] = {"post": _operation(handler, summary, send=True)}
    if keyed:
        key = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
        for item in paths.values():
            item["parameters"] = [key]
    ingress = meta.ingress_endpoint(admin_app.context(request))
    return json_response(
        {
            "openapi": "3.1.0",
            "info": {"title": name, "version": str(service["revision"])},
            "servers": [{"url": ingress.rstrip("/")}],
            "paths": paths,
        }
    )


def register(routes: admin_app.AdminRoutes) -> None:
    """Add this module's routes."""
    routes.add("GET", "/services", list_services)
    routes.add("GET", "/services/{service}", get_service)
    routes.add("PATCH", "/services/{service}", modify_service)
    routes.add("GET", "/services/{service}/openapi", get_service_openapi)
    routes.add("GET", "/services/{service}/handlers", list_handlers)
    routes.add("GET", "/services/{service}/handlers/{handler}", get_handler)
