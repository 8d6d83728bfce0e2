"""The HTTP ingress (port 8080): calls, sends, attach/output, awakeables, health.

The app only translates HTTP to records and back; the partition processors decide everything
(dedup, locking, scheduling). Errors are `IngressError`s rendered in one place, in the real
server's JSON shape.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from restate_server.config import Config, parse_duration
from restate_server.ids import IdError, InvocationId, decode_awakeable_id
from restate_server.ingress import paths
from restate_server.ingress.errors import (
    BadRequest,
    HandlerNotFound,
    IngressError,
    MethodNotAllowed,
    NotFound,
    NotReady,
    PayloadTooLarge,
    TooManyRequests,
)
from restate_server.log.records import Failure, Invoke, NotifySignal, Result, Source, Value
from restate_server.observability import metrics, tracing
from restate_server.schema.model import HandlerType, ServiceType
from restate_server.schema.options import invocation_options
from restate_server.schema.registry import SchemaRegistry
from restate_server.storage import status as st_mod
from restate_server.web import shedding
from restate_server.worker.actions import InvocationCompleted, Outcome
from restate_server.worker.api import WorkerHandle

_COMMON = {
    "vary": "origin, access-control-request-method, access-control-request-headers",
    "access-control-allow-credentials": "true",
}
_SKIPPED_HEADERS = frozenset(
    {"connection", "host", "idempotency-key", "idempotency-expires", "content-length", "transfer-encoding"}
)


_SPAN = web.RequestKey("ingress_span", tracing.Span)
"""The request's `ingress …` span, while tracing is on."""


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":")).encode(),
        content_type="application/json",
        headers={**_COMMON, **(headers or {})},
    )


def _error(status: int, message: str, source: str, headers: dict[str, str] | None = None) -> web.Response:
    reason = "<none>" if status == 470 else None
    resp = _json(
        status,
        {"code": status, "message": message, "source": source},
        {"x-restate-error-source": source, **(headers or {})},
    )
    if reason is not None:
        resp.set_status(status, reason)
    return resp


def _overloaded() -> web.Response:
    metrics.INGRESS_REQUESTS.labels(metrics.REQUEST_RATE_LIMITED, "", "").inc()
    error = TooManyRequests()
    return _error(error.status, error.message, error.source)


def _rfc3339(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+00:00"


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


class Ingress:
    def __init__(self, config: Config, registry: SchemaRegistry, worker: WorkerHandle) -> None:
        self.config = config
        self.registry = registry
        self.worker = worker

    def app(self) -> web.Application:
        ingress = self.config.ingress
        app = web.Application(
            client_max_size=ingress.request_size_limit,
            middlewares=shedding.load_shed(ingress.concurrent_api_requests_limit, _overloaded),
        )
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def _body(self, request: web.Request) -> bytes:
        """The request body, refused with 413 past `ingress.request-size-limit`.

        A declared length past the limit is refused before anything is read, as upstream's body
        limit layer does; a chunked body is refused when it crosses the limit (aiohttp stops there).
        """
        declared = request.content_length
        if declared is not None and declared > self.config.ingress.request_size_limit:
            raise PayloadTooLarge()
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise PayloadTooLarge() from exc

    async def handle(self, request: web.Request) -> web.StreamResponse:
        metrics.INGRESS_REQUESTS.labels(metrics.REQUEST_ADMITTED, "", "").inc()
        try:
            if request.method not in ("GET", "POST"):
                raise MethodNotAllowed()
            route = paths.parse(request.rel_url.raw_path, self._is_keyed)
            match route:
                case paths.Health():
                    return _json(200, {"services": [s.name for s in self.registry.services()]})
                case paths.ServiceCall():
                    return await self._observed_call(request, route)
                case paths.InvocationTarget():
                    return await self._attach_or_output(route)
                case paths.Awakeable():
                    return await self._awakeable(request, route)
        except IngressError as exc:
            return _error(exc.status, exc.message, "ingress")
        raise AssertionError("unreachable")

    def _is_keyed(self, name: str) -> bool | None:
        service = self.registry.service(name)
        return None if service is None else service.ty != ServiceType.SERVICE

    # ---- calls and sends
    async def _observed_call(self, request: web.Request, route: paths.ServiceCall) -> web.StreamResponse:
        """`_call`, counted and timed under upstream's ingress metrics (status as upstream classifies)."""
        started = time.perf_counter()
        status = metrics.REQUEST_INGRESS_ERROR
        try:
            response = await self._call(request, route)
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
            rpc_type = "send" if route.send else "call"
            metrics.INGRESS_REQUESTS.labels(status, route.service, rpc_type).inc()
            metrics.INGRESS_REQUEST_DURATION.labels(route.service, rpc_type).observe(
                time.perf_counter() - started
            )

    async def _call(self, request: web.Request, route: paths.ServiceCall) -> web.StreamResponse:
        service = self.registry.service(route.service)
        assert service is not None
        handler = service.handlers.get(route.handler)
        if handler is None:
            raise HandlerNotFound(route.service, route.handler)
        if not handler.public:
            raise BadRequest("the invoked service is not public")
        delay = None
        for name, value in request.query.items():
            if name.lower() == "delay":
                if not route.send:
                    raise BadRequest(
                        "cannot use the delay query parameter with calls. The delay is supported "
                        "only with sends"
                    )
                try:
                    delay = parse_duration(value)
                except ValueError as exc:
                    raise BadRequest(f"bad delay query parameter: {exc}") from exc
        idempotency_key = request.headers.get("idempotency-key")
        workflow_run = handler.ty == HandlerType.WORKFLOW
        if idempotency_key is not None and workflow_run:
            raise BadRequest(
                "cannot use the idempotency key with workflow handlers. The handler invocation will "
                "already be idempotent by the workflow key itself."
            )
        body = await self._body(request)
        content_type = request.headers.get("content-type")
        problem = handler.input.validate(content_type, body)
        if problem is not None:
            raise BadRequest(f"input validation error: {problem}")
        key = route.key
        if workflow_run:
            assert key is not None
            inv = InvocationId.for_workflow(service.name, key)
        elif idempotency_key is not None:
            inv = InvocationId.for_idempotent_request(service.name, handler.name, idempotency_key, key)
        else:
            inv = InvocationId.for_call(service.name, key)
        options = invocation_options(service, handler, self.config)
        retention = (
            options.workflow_completion_retention
            if workflow_run
            else options.idempotency_retention
            if idempotency_key is not None
            else 0.0
        )
        now = int(time.time() * 1000)
        headers = [(k.lower(), v) for k, v in request.headers.items() if k.lower() not in _SKIPPED_HEADERS]
        if tracing.TRACER is not None:
            headers = _traced(request, tracing.TRACER, inv, service.name, handler.name, key, headers)
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
            completion_retention=int(retention * 1000),
            journal_retention=int(options.journal_retention * 1000),
            is_call=not route.send,
        )
        output_ct = handler.output.content_type
        set_if_empty = handler.output.set_content_type_if_empty
        if route.send:
            outcome = await self.worker.submit(inv.partition_key, record)
            body_json: dict[str, Any] = {"invocationId": str(inv)}
            if outcome.execute_at is not None and outcome.outcome == Outcome.ACCEPTED:
                body_json["executionTime"] = datetime.fromtimestamp(
                    outcome.execute_at / 1000, tz=UTC
                ).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
            body_json["status"] = "Accepted" if outcome.outcome == Outcome.ACCEPTED else "PreviouslyAccepted"
            return _json(202, body_json, {"x-restate-id": str(inv)})
        waiter = self.worker.wait_completion(inv.to_bytes())
        try:
            outcome = await self.worker.submit(inv.partition_key, record)
            id_header = {"x-restate-id": str(inv)}
            if outcome.outcome == Outcome.CONFLICT:
                return _error(409, "the workflow method was already invoked", "invocation", id_header)
            if outcome.result is not None:
                result, expires_at = outcome.result, outcome.expires_at
            else:
                done = await waiter
                result, expires_at = done.result, done.expires_at
            if outcome.outcome != Outcome.ACCEPTED and expires_at is not None:
                # upstream marks answers that come from an invocation that already existed
                id_header["idempotency-expires"] = _rfc3339(expires_at)
            return self._result(result, output_ct, set_if_empty, id_header)
        finally:
            self.worker.drop_completion(inv.to_bytes(), waiter)

    @staticmethod
    def _result(
        result: Result, content_type: str | None, set_if_empty: bool, headers: dict[str, str]
    ) -> web.Response:
        if isinstance(result, Failure):
            status = result.code if 100 <= result.code <= 599 else 500
            return _error(status, result.message, "invocation", headers)
        value = result.content if isinstance(result, Value) else b""
        resp = web.Response(status=200, body=value, headers={**headers, **_COMMON})
        if content_type is not None and (value or set_if_empty):
            resp.headers["content-type"] = content_type
        return resp

    # ---- attach / output
    def _target_id(self, route: paths.InvocationTarget) -> InvocationId:
        if route.invocation_id is not None:
            try:
                return InvocationId.parse(route.invocation_id)
            except IdError as exc:
                raise BadRequest(f"bad invocation id: {exc}") from exc
        assert route.service is not None
        service = self.registry.service(route.service)
        if route.workflow:
            assert route.key is not None
            return InvocationId.for_workflow(route.service, route.key)
        if service is None:
            raise NotFound("invocation not found")
        assert route.handler is not None
        assert route.idempotency_key is not None
        return InvocationId.for_idempotent_request(
            route.service, route.handler, route.idempotency_key, route.key
        )

    def _output_rules(self, st: st_mod.InvocationStatus) -> tuple[str | None, bool]:
        service = self.registry.service(st.service)
        handler = service.handlers.get(st.handler) if service is not None else None
        if handler is None:
            return None, False
        return handler.output.content_type, handler.output.set_content_type_if_empty

    async def _attach_or_output(self, route: paths.InvocationTarget) -> web.StreamResponse:
        inv = self._target_id(route)
        raw = inv.to_bytes()
        headers = {"x-restate-id": str(inv)}
        if route.action == "output":
            st = self.worker.read_status(inv)
            if st is None:
                raise NotFound("invocation not found")
            if st.status != st_mod.Status.COMPLETED or st.result is None:
                raise NotReady()
            if st.expires_at is not None:
                headers["idempotency-expires"] = _rfc3339(st.expires_at)
            return self._result(st.result, *self._output_rules(st), headers)
        waiter = self.worker.wait_completion(raw)
        try:
            st = self.worker.read_status(inv)
            if st is None:
                return _error(404, "not found", "invocation", headers)
            content_type, set_if_empty = self._output_rules(st)
            if st.status == st_mod.Status.COMPLETED and st.result is not None:
                if st.expires_at is not None:
                    headers["idempotency-expires"] = _rfc3339(st.expires_at)
                return self._result(st.result, content_type, set_if_empty, headers)
            done: InvocationCompleted = await waiter
            if done.expires_at is not None:
                headers["idempotency-expires"] = _rfc3339(done.expires_at)
            return self._result(done.result, content_type, set_if_empty, headers)
        finally:
            self.worker.drop_completion(raw, waiter)

    # ---- awakeables
    async def _awakeable(self, request: web.Request, route: paths.Awakeable) -> web.StreamResponse:
        if request.method != "POST":
            raise MethodNotAllowed()
        try:
            ref = decode_awakeable_id(route.awakeable_id)
        except IdError as exc:
            raise BadRequest(f"bad awakeable id: {exc}") from exc
        body = await self._body(request)
        result: Result = (
            Value(content=body)
            if route.action == "resolve"
            else Failure(code=500, message=body.decode(errors="replace"))
        )
        record = NotifySignal(
            invocation_id=ref.invocation_id.to_bytes(), signal_index=ref.idx, signal_name=None, result=result
        )
        await self.worker.submit(ref.invocation_id.partition_key, record)
        return web.Response(status=202, headers=_COMMON)
