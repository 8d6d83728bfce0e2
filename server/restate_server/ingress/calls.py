"""Calls and sends to a handler: the checks upstream makes, in its order, then an `Invoke` record.

Order (upstream's `service_handler.rs`): the handler must exist and be public; an idempotency key is
refused on a workflow run; scopes need vqueues; only GET and POST; then the body, its content type,
the delay, the limit key and the headers. Handlers receive every request header but `connection`,
`host`, `idempotency-key` and `idempotency-expires`, plus `x-restate-ingress-path`.

Retention follows upstream 1.7, which gives every ingress call to a service or virtual object an
idempotency key of its own ("controlled idempotent sharding"): such calls keep their completion for
the idempotency retention even when the journal is not retained. The key itself is not invented
here, so invocation ids and `idempotency_key` stay what the client sent.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from restate_server.config import parse_duration
from restate_server.ids import InvocationId
from restate_server.ingress import paths, responses
from restate_server.ingress.context import IngressContext
from restate_server.ingress.errors import BadRequest, HandlerNotFound, IngressError, MethodNotAllowed
from restate_server.log.records import Invoke, Source
from restate_server.observability import metrics, tracing
from restate_server.schema.model import HandlerType, ServiceType
from restate_server.schema.options import invocation_options, retention
from restate_server.worker.actions import Outcome

INGRESS_PATH_HEADER = "x-restate-ingress-path"
_SPAN = web.RequestKey("ingress_span", tracing.Span)
"""The request's `ingress …` span, while tracing is on."""
_SKIPPED_HEADERS = frozenset({"connection", "host", "idempotency-key", "idempotency-expires"})


def _delay(query: str) -> float | None:
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name.lower() == "delay":
            try:
                return parse_duration(value)
            except ValueError as exc:
                raise BadRequest(f"bad delay query parameter, must be a ISO8601 duration: {exc}") from exc
    return None


def _limit_key(request: web.Request) -> bool:
    """Whether a limit key was given (they need a scope, which needs vqueues: always refused)."""
    if "x-restate-limit-key" in request.headers:
        return True
    return any(
        name.lower() == "limit-key" for name, _ in parse_qsl(request.query_string, keep_blank_values=True)
    )


def ingress_path(request: web.Request) -> str:
    """The normalised path and the query, as upstream hands them to the handler."""
    raw_path, question, raw_query = request.raw_path.partition("?")
    return paths.normalise(raw_path) + question + raw_query


async def observed_call(
    ctx: IngressContext, request: web.Request, route: paths.ServiceCall
) -> web.StreamResponse:
    """`call`, counted and timed under upstream's ingress metrics (status as upstream classifies it),
    and its `ingress …` span ended. Unregistered service names are not used as labels."""
    started = time.perf_counter()
    status = metrics.REQUEST_INGRESS_ERROR
    try:
        response = await call(ctx, request, route)
        status = metrics.REQUEST_INVOCATION_ERROR if response.status >= 400 else metrics.REQUEST_COMPLETED
        return response
    except IngressError as exc:
        status = metrics.REQUEST_ERROR if 400 <= exc.status < 500 else metrics.REQUEST_INGRESS_ERROR
        raise
    finally:
        span = request.get(_SPAN)
        if span is not None:
            span.set_attribute("restate.ingress.status", status)
            span.end()
        service = route.service if ctx.registry.service(route.service) is not None else ""
        rpc_type = "send" if route.send else "call"
        metrics.INGRESS_REQUESTS.labels(status, service, rpc_type).inc()
        metrics.INGRESS_REQUEST_DURATION.labels(service, rpc_type).observe(time.perf_counter() - started)


def _traced(
    request: web.Request,
    tracer: tracing.Tracer,
    inv: InvocationId,
    service: str,
    handler: str,
    key: str | None,
    headers: list[tuple[str, str]],
) -> list[tuple[str, str]]:
    """Start the request's span (child of the caller's `traceparent`) and make it the invocation's parent.

    The span's context replaces the caller's `traceparent` among the invocation's headers: they are
    journaled, so every attempt, on any node and after any restart, finds its parent there.
    """
    caller = tracing.find_traceparent(headers)
    if caller is not None and not caller.sampled:
        return headers  # the caller chose not to sample: neither do we
    target = tracing.Target(invocation_id=str(inv), uuid=inv.uuid, service=service, handler=handler, key=key)
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) and len(peer) >= 2 else None
    span = tracer.start_ingress(target, caller, client)
    request[_SPAN] = span
    own = tracing.header_of(span).header()
    return [(k, v) for k, v in headers if k != "traceparent"] + [("traceparent", own)]


async def call(ctx: IngressContext, request: web.Request, route: paths.ServiceCall) -> web.StreamResponse:
    service = ctx.registry.service(route.service)
    handler = service.handlers.get(route.handler) if service is not None else None
    if service is None or handler is None:
        raise HandlerNotFound(route.service, route.handler)
    if not handler.public:
        raise BadRequest("the invoked service is not public")
    idempotency_key = request.headers.get("idempotency-key")
    workflow_run = handler.ty == HandlerType.WORKFLOW
    if idempotency_key is not None and workflow_run:
        raise BadRequest(
            "cannot use the idempotency key with workflow handlers. The handler invocation will "
            "already be idempotent by the workflow key itself."
        )
    if route.scope is not None:
        raise BadRequest("scoped invocations require vqueues to be enabled")
    if request.method not in ("GET", "POST"):
        raise MethodNotAllowed()
    body = await ctx.body(request)
    problem = handler.input.validate(request.headers.get("content-type"), body)
    if problem is not None:
        raise BadRequest(f"input validation error: {problem}")
    delay = _delay(request.query_string)
    if _limit_key(request):
        raise BadRequest("limit-key requires a scope to be set")
    headers = [(INGRESS_PATH_HEADER, ingress_path(request))]
    headers += [(k.lower(), v) for k, v in request.headers.items() if k.lower() not in _SKIPPED_HEADERS]
    if delay is not None and not route.send:
        raise BadRequest(
            "cannot use the delay query parameter with calls. The delay is supported only with sends"
        )
    key = route.key
    if workflow_run:
        assert key is not None
        inv = InvocationId.for_workflow(service.name, key)
    elif idempotency_key is not None:
        inv = InvocationId.for_idempotent_request(service.name, handler.name, idempotency_key, key)
    else:
        inv = InvocationId.for_call(service.name, key)
    options = invocation_options(service, handler, ctx.config)
    kept = retention(
        options,
        workflow_run=workflow_run,
        idempotent=idempotency_key is not None or service.ty != ServiceType.WORKFLOW,
    )
    if tracing.TRACER is not None:
        headers = _traced(request, tracing.TRACER, inv, service.name, handler.name, key, headers)
    now = int(time.time() * 1000)
    record = Invoke(
        invocation_id=inv.to_bytes(),
        service=service.name,
        handler=handler.name,
        key=key,
        service_ty=str(service.ty),
        handler_ty=str(handler.ty) if handler.ty is not None else None,
        headers=headers,
        body=body,
        created_at=now,
        source=Source(kind="ingress"),
        idempotency_key=idempotency_key,
        execute_at=now + int(delay * 1000) if delay else None,
        completion_retention=int(kept.completion * 1000),
        journal_retention=int(kept.journal * 1000),
        is_call=not route.send,
    )
    if route.send:
        return await _send(ctx, inv, record)
    output_rules = (handler.output.content_type, handler.output.set_content_type_if_empty)
    waiter = ctx.worker.wait_completion(inv.to_bytes())
    try:
        outcome = await ctx.worker.submit(inv.partition_key, record)
        id_header = {"x-restate-id": str(inv)}
        if outcome.outcome == Outcome.CONFLICT:
            return responses.error(409, "the workflow method was already invoked", "invocation", id_header)
        if outcome.result is not None:
            result, expires_at = outcome.result, outcome.expires_at
        else:
            done = await waiter
            result, expires_at = done.result, done.expires_at
        if outcome.outcome != Outcome.ACCEPTED and expires_at is not None:
            # upstream marks answers that come from an invocation that already existed
            id_header["idempotency-expires"] = responses.rfc3339(expires_at)
        return responses.result(result, *output_rules, id_header)
    finally:
        ctx.worker.drop_completion(inv.to_bytes(), waiter)


async def _send(ctx: IngressContext, inv: InvocationId, record: Invoke) -> web.StreamResponse:
    outcome = await ctx.worker.submit(inv.partition_key, record)
    body: dict[str, Any] = {"invocationId": str(inv)}
    if outcome.execute_at is not None and outcome.outcome == Outcome.ACCEPTED:
        body["executionTime"] = datetime.fromtimestamp(outcome.execute_at / 1000, tz=UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%f000Z"
        )
    body["status"] = "Accepted" if outcome.outcome == Outcome.ACCEPTED else "PreviouslyAccepted"
    return responses.json_response(202, body, {"x-restate-id": str(inv)})
