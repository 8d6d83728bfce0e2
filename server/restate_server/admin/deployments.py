"""``/deployments``: register, list, describe, update in place and remove deployments.

Registration follows upstream 1.7 (``crates/admin/src/rest_api/deployments.rs``):

* ``force`` defaults to true only on the ``/v1``-``/v2`` API; forcing means "overwrite and allow
  breaking changes", ``breaking`` alone allows type changes of a new deployment;
* without overwrite, an address already registered is answered from the registry without discovery:
  200 on the unprefixed and ``/v3``+ APIs, 409 on ``/v2``;
* an overwrite keeps the deployment id and answers 200 (201 on ``/v2``); a new deployment is 201;
* ``dry_run`` computes the same answer without storing it (so the CLI learns an existing id).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from restate_server import ids
from restate_server.admin import app as admin_app, errors, model
from restate_server.admin.errors import json_response
from restate_server.schema.registry import AddResult

log = logging.getLogger(__name__)


def _flag(body: Mapping[str, Any], key: str, default: bool | None) -> bool | None:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise admin_app.body_shape_error(f"{key}: invalid type: expected a boolean")
    return value


def _string_map(body: Mapping[str, Any], key: str) -> dict[str, str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise admin_app.body_shape_error(f"{key}: invalid type: expected a map of strings")
    return dict(value)


_NOT_IN_URIS = re.compile(r"[\x00-\x20\x7f]")  # http::Uri refuses control characters and spaces


def _parses_as_uri(value: str) -> bool:
    """Whether `http::Uri` would read `value`: no controls or spaces, a well-formed authority."""
    if _NOT_IN_URIS.search(value):
        return False
    try:
        _ = urlsplit(value).port  # an unclosed `[` or a port that is not a number raises
    except ValueError:
        return False
    return True


def _checked_uri(value: Any, request_type: str) -> str:
    """The ``uri`` field; one that is no URI fails the untagged request enum, as serde reports it (422)."""
    if not isinstance(value, str):
        raise admin_app.body_shape_error("uri: invalid type: expected a string")
    if not _parses_as_uri(value):
        raise admin_app.body_shape_error(f"data did not match any variant of untagged enum {request_type}")
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        raise errors.invalid_field(
            "uri", f"The provided uri {value} is not absolute, only absolute URIs can be used."
        )
    return value


def deployment_id(request: web.Request) -> str:
    """The ``{deployment}`` path parameter, refused as axum's ``Path`` extractor refuses bad ids."""
    raw = request.match_info["deployment"]
    try:
        return str(ids.DeploymentId.parse(raw))
    except ValueError as e:
        raise errors.PlainTextError(400, f"Invalid URL: {e}") from e


async def create_deployment(request: web.Request) -> web.StreamResponse:
    """``POST /deployments``."""
    ctx = admin_app.context(request)
    version = admin_app.api_version(request)
    body = await admin_app.read_json(request)
    if "uri" not in body:
        if "arn" in body:
            raise errors.invalid_field("arn", "Lambda deployments are not supported by this server")
        raise admin_app.body_shape_error(
            "data did not match any variant of untagged enum RegisterDeploymentRequest"
        )
    uri = _checked_uri(body["uri"], "RegisterDeploymentRequest")
    force = _flag(body, "force", None)
    if force is None:
        force = version in (1, 2)
    breaking = bool(_flag(body, "breaking", False))
    metadata = _string_map(body, "metadata") or {}
    result, deployment = await ctx.registry.register_deployment(
        uri,
        additional_headers=_string_map(body, "additional_headers") or {},
        use_http_11=bool(_flag(body, "use_http_11", False)),
        metadata=metadata,
        overwrite=force,
        allow_breaking=force or breaking,
        dry_run=bool(_flag(body, "dry_run", False)),
    )
    modern = version == admin_app.UNKNOWN_API_VERSION or version >= 3
    if result is AddResult.CREATED:
        status = 201
    elif result is AddResult.UNCHANGED:
        if not modern:
            raise errors.conflict(f"deployment {deployment.id} already exists")
        status = 200
    else:
        status = 200 if modern else 201
    return json_response(
        model.register_response(deployment, ctx.config),
        status=status,
        headers={"location": f"deployments/{deployment.id}"},
    )


async def list_deployments(request: web.Request) -> web.StreamResponse:
    """``GET /deployments``."""
    registry = admin_app.context(request).registry
    return json_response({"deployments": [model.deployment_response(d) for d in registry.deployments()]})


async def get_deployment(request: web.Request) -> web.StreamResponse:
    """``GET /deployments/{deployment}``."""
    ctx = admin_app.context(request)
    dp_id = deployment_id(request)
    deployment = ctx.registry.deployment(dp_id)
    if deployment is None:
        raise errors.not_found("deployment", dp_id)
    return json_response(model.detailed_deployment_response(deployment, ctx.config))


async def delete_deployment(request: web.Request) -> web.StreamResponse:
    """``DELETE /deployments/{deployment}``: only forced removal exists (501 otherwise, as upstream)."""
    ctx = admin_app.context(request)
    dp_id = deployment_id(request)
    force = request.query.get("force")
    if force not in (None, "true", "false"):
        raise errors.PlainTextError(
            400, "Failed to deserialize query string: force: provided string was not `true` or `false`"
        )
    if force != "true":
        return web.Response(status=501)
    if ctx.invocation_count_for_deployment is not None:
        counted = ctx.invocation_count_for_deployment(dp_id)
        pinned = await counted if inspect.isawaitable(counted) else counted
        if pinned:
            log.warning("force-removing deployment %s with %d invocations pinned to it", dp_id, pinned)
    await ctx.registry.delete_deployment(dp_id)
    return web.Response(status=202)


async def update_deployment(request: web.Request) -> web.StreamResponse:
    """``PATCH /deployments/{deployment}`` (and the deprecated ``PUT`` on ``/v1``-``/v2``)."""
    ctx = admin_app.context(request)
    version = admin_app.api_version(request)
    if request.method == "PUT" and (version == admin_app.UNKNOWN_API_VERSION or version >= 3):
        raise errors.AdminError(405, "PUT deployment is deprecated, use PATCH instead")
    dp_id = deployment_id(request)
    body = await admin_app.read_json(request)
    uri = None if body.get("uri") is None else _checked_uri(body["uri"], "UpdateDeploymentRequest")
    headers = _string_map(body, "additional_headers")
    use_http_11 = _flag(body, "use_http_11", None)
    existing = ctx.registry.deployment(dp_id)
    if existing is None:
        raise errors.not_found("deployment", dp_id)
    if uri is None and headers is None and use_http_11 is None:
        return json_response(model.detailed_deployment_response(existing, ctx.config))
    deployment = await ctx.registry.update_deployment(
        dp_id,
        uri=uri,
        additional_headers=headers,
        use_http_11=use_http_11,
        overwrite=bool(_flag(body, "overwrite", False)),
        dry_run=bool(_flag(body, "dry_run", False)),
    )
    return json_response(model.detailed_deployment_response(deployment, ctx.config))


def register(routes: admin_app.AdminRoutes) -> None:
    """Add this module's routes."""
    routes.add("GET", "/deployments", list_deployments)
    routes.add("POST", "/deployments", create_deployment)
    routes.add("GET", "/deployments/{deployment}", get_deployment)
    routes.add("DELETE", "/deployments/{deployment}", delete_deployment)
    routes.add("PATCH", "/deployments/{deployment}", update_deployment)
    routes.add("PUT", "/deployments/{deployment}", update_deployment)
