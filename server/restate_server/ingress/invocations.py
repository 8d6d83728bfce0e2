"""Existing invocations through the ingress: attach, output, lookup, and awakeable completion.

A target is an invocation id, an idempotent request (service, key, handler, idempotency key) or a
workflow run (service, key), from the path or, for `POST /restate/attach|output|lookup`, from a JSON
body `{"target": "invocation"|"idempotentInvocation"|"workflow", …}` (upstream's
`InvocationTargetRequest`). A body that does not parse is upstream's 500 "cannot read body".
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from restate_server.ids import IdError, InvocationId, decode_awakeable_id
from restate_server.ingress import paths, responses
from restate_server.ingress.context import IngressContext
from restate_server.ingress.errors import BadRequest, IngressError, MethodNotAllowed, NotFound, NotReady
from restate_server.log.records import Failure, NotifySignal, Result, Value
from restate_server.storage import status as st_mod


class BadBody(IngressError):
    """Upstream's `HandlerError::Body` for a body that is not the expected JSON (500)."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"cannot read body: invalid {what} body: {reason}")


def _parse_id(text: str) -> InvocationId:
    try:
        return InvocationId.parse(text)
    except IdError as exc:
        raise BadRequest(f"bad invocation id '{text}': {exc}") from exc


def _field(body: dict[str, Any], name: str, what: str, *, optional: bool = False) -> Any:
    value = body.get(name)
    if value is None and not optional:
        raise BadBody(what, f"missing field `{name}`")
    if value is not None and not isinstance(value, str):
        raise BadBody(what, f"invalid type for `{name}`, expected a string")
    return value


def target_of_body(raw: bytes, what: str) -> tuple[InvocationId, str | None]:
    """The invocation a JSON target body names, and its scope."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadBody(what, str(exc)) from exc
    if not isinstance(body, dict):
        raise BadBody(what, "expected a JSON object")
    kind = body.get("target")
    scope = None
    match kind:
        case "invocation":
            return _parse_id(_field(body, "invocationId", what)), None
        case "workflow":
            scope = _field(body, "scope", what, optional=True)
            name, key = _field(body, "workflowName", what), _field(body, "workflowKey", what)
            return InvocationId.for_workflow(name, key, scope), scope
        case "idempotentInvocation":
            scope = _field(body, "scope", what, optional=True)
            return (
                InvocationId.for_idempotent_request(
                    _field(body, "service", what),
                    _field(body, "handler", what),
                    _field(body, "idempotencyKey", what),
                    _field(body, "key", what, optional=True),
                    scope,
                ),
                scope,
            )
    if kind is None:
        raise BadBody(what, "missing field `target`")
    raise BadBody(
        what, f"unknown variant `{kind}`, expected one of `workflow`, `idempotentInvocation`, `invocation`"
    )


def _target_id(target: paths.Target) -> InvocationId:
    match target:
        case paths.ByInvocationId():
            return _parse_id(target.invocation_id)
        case paths.ByWorkflow():
            return InvocationId.for_workflow(target.service, target.key)
        case paths.ByIdempotencyKey():
            return InvocationId.for_idempotent_request(
                target.service, target.handler, target.idempotency_key, target.key
            )


async def invocation(
    ctx: IngressContext, request: web.Request, route: paths.InvocationRequest
) -> web.StreamResponse:
    """Attach or output, by path (GET) or by a target in the body (POST)."""
    if route.target is None:
        if request.method != "POST":
            raise MethodNotAllowed()
        inv, _scope = target_of_body(await ctx.body(request), "request")
    else:
        if request.method != "GET":
            raise MethodNotAllowed()
        inv = _target_id(route.target)
    if route.action == paths.Action.OUTPUT:
        return await _output(ctx, inv)
    return await _attach(ctx, inv)


async def lookup(ctx: IngressContext, request: web.Request) -> web.StreamResponse:
    """`POST /restate/lookup`: the id a target has, whether or not it exists."""
    if request.method != "POST":
        raise MethodNotAllowed()
    inv, _scope = target_of_body(await ctx.body(request), "lookup")
    return responses.json_response(200, {"invocationId": str(inv)})


def _output_rules(ctx: IngressContext, st: st_mod.InvocationStatus) -> tuple[str | None, bool]:
    service = ctx.registry.service(st.service)
    handler = service.handlers.get(st.handler) if service is not None else None
    if handler is None:
        return None, False
    return handler.output.content_type, handler.output.set_content_type_if_empty


async def _output(ctx: IngressContext, inv: InvocationId) -> web.StreamResponse:
    st = await ctx.worker.read_status(inv)
    if st is None:
        raise NotFound("invocation not found")
    if st.status != st_mod.Status.COMPLETED or st.result is None:
        raise NotReady()
    headers = {"x-restate-id": str(inv)}
    if st.expires_at is not None:
        headers["idempotency-expires"] = responses.rfc3339(st.expires_at)
    return responses.result(st.result, *_output_rules(ctx, st), headers)


async def _attach(ctx: IngressContext, inv: InvocationId) -> web.StreamResponse:
    raw = inv.to_bytes()
    headers = {"x-restate-id": str(inv)}
    waiter = ctx.worker.wait_completion(raw)
    try:
        st = await ctx.worker.read_status(inv)
        if st is None:
            return responses.error(404, "not found", "invocation", headers)
        rules = _output_rules(ctx, st)
        if st.status == st_mod.Status.COMPLETED and st.result is not None:
            result, expires_at = st.result, st.expires_at
        else:
            done = await waiter
            result, expires_at = done.result, done.expires_at
        if expires_at is not None:
            headers["idempotency-expires"] = responses.rfc3339(expires_at)
        return responses.result(result, *rules, headers)
    finally:
        ctx.worker.drop_completion(raw, waiter)


async def awakeable(ctx: IngressContext, request: web.Request, route: paths.Awakeable) -> web.StreamResponse:
    if request.method != "POST":
        raise MethodNotAllowed()
    try:
        ref = decode_awakeable_id(route.awakeable_id)
    except IdError as exc:
        raise BadRequest(f"bad awakeable id '{route.awakeable_id}': {exc}") from exc
    body = await ctx.body(request)
    result: Result = (
        Value(content=body)
        if route.action == "resolve"
        else Failure(code=500, message=body.decode(errors="replace"))
    )
    record = NotifySignal(
        invocation_id=ref.invocation_id.to_bytes(), signal_index=ref.idx, signal_name=None, result=result
    )
    await ctx.worker.submit(ref.invocation_id.partition_key, record)
    return web.Response(status=202)
