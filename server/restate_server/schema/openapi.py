"""The OpenAPI 3.1 contract of one service, as upstream generates it from the service's schema.

Pure: the latest revision of a service and the ingress URL in, a JSON-ready document out (served at
`GET /services/{service}/openapi`). Each public handler gets `POST /restate/call/…` and `POST
/restate/send/…` (upstream 1.7's ingress paths); idempotent handlers of services and objects, and a
workflow's `run`, also get their (deprecated) attach and output paths. Input and output JSON schemas
become `{handler}Request` / `{handler}Response` components, `$ref`s inside them rewritten to point
into the component; the shared parameters, responses and the error schema are upstream's components
by name, so generated clients look the same.
"""

from __future__ import annotations

from typing import Any

from restate_server.schema import model

Json = dict[str, Any]

_KEY = "key"
_IDEMPOTENCY_HEADER = "idempotencyKeyHeader"
_IDEMPOTENCY_PATH = "idempotencyKeyPath"
_DELAY = "delay"
_GENERIC_ERROR = "GenericError"
_NOT_FOUND = "InvocationNotFoundError"
_NOT_READY = "InvocationNotReadyError"
_SEND = "Send"
_ERROR_SCHEMA = "RestateError"
_DOCS = "https://docs.restate.dev/invoke/http"


def _ref(kind: str, name: str) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


def _rewrite_refs(prefix: str, schema: Any) -> Any:
    """Local `$ref`s (`#/…`) of a handler's schema, re-rooted at the component that holds it."""
    if isinstance(schema, list):
        return [_rewrite_refs(prefix, item) for item in schema]
    if isinstance(schema, dict):
        out = {key: _rewrite_refs(prefix, value) for key, value in schema.items()}
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            out["$ref"] = prefix + ref[1:]
        return out
    return schema


class _Collector:
    """The `{handler}Request` / `{handler}Response` schemas, in the order handlers name them."""

    def __init__(self) -> None:
        self.schemas: Json = {}

    def add(self, name: str, schema: Any) -> Json:
        self.schemas[name] = _rewrite_refs(f"#/components/schemas/{name}", schema)
        return _ref("schemas", name)


def _request_body(handler: model.Handler, collector: _Collector) -> Json | None:
    rules = handler.input
    if rules.content_type is None:
        return None
    if rules.json_schema is None:
        content: Json = {}
    else:
        schema = {} if rules.json_schema is True else rules.json_schema
        content = {"schema": collector.add(f"{handler.name}Request", schema)}
    return {"content": {rules.content_type: content}, "required": rules.required}


def _response(handler: model.Handler, collector: _Collector) -> Json:
    rules = handler.output
    if rules.content_type is None:
        return {"description": "Empty"}
    content: Json = {}
    if rules.json_schema is not None:
        content = {"schema": collector.add(f"{handler.name}Response", rules.json_schema)}
    return {"description": "", "content": {rules.content_type: content}}


def _operation(
    handler: model.Handler,
    *,
    operation_id: str,
    description: str,
    parameters: list[Json],
    responses: Json,
    tag: str | None = None,
    request_body: Json | None = None,
    deprecated: bool = False,
) -> Json:
    operation: Json = {}
    if tag is not None:
        operation["tags"] = [tag]
    operation |= {"summary": handler.name, "description": description, "operationId": operation_id}
    operation["parameters"] = parameters
    if request_body is not None:
        operation["requestBody"] = request_body
    operation["responses"] = dict(sorted(responses.items()))
    if deprecated:
        operation["deprecated"] = True
    if handler.metadata:
        operation["x-restate-extensions"] = dict(handler.metadata)
    return operation


def _paths(service: model.Service, collector: _Collector) -> Json:
    keyed = service.ty.keyed
    name = service.name
    segment = f"{name}/{{key}}" if keyed else name
    call_parameters = [_ref("parameters", _KEY)] if keyed else []
    lookup_parameters = list(call_parameters)
    if service.ty != model.ServiceType.WORKFLOW:
        call_parameters.append(_ref("parameters", _IDEMPOTENCY_HEADER))
        lookup_parameters.append(_ref("parameters", _IDEMPOTENCY_PATH))
    calls: Json = {}
    sends: Json = {}
    attaches: Json = {}
    outputs: Json = {}
    for handler in service.handlers.values():
        if not handler.public:
            continue
        body = _request_body(handler, collector)
        response = _response(handler, collector)
        error = {"default": _ref("responses", _GENERIC_ERROR)}
        docs = handler.documentation
        calls[f"/restate/call/{segment}/{handler.name}"] = {
            "post": _operation(
                handler,
                operation_id=handler.name,
                description=docs or f"Call {name} handler {handler.name} and wait for its response",
                parameters=call_parameters,
                request_body=body,
                responses={"200": response, **error},
            )
        }
        sends[f"/restate/send/{segment}/{handler.name}"] = {
            "post": _operation(
                handler,
                operation_id=f"{handler.name}Send",
                description=docs or f"Send a request to {name} handler {handler.name} without waiting",
                parameters=[*call_parameters, _ref("parameters", _DELAY)],
                tag="Send",
                request_body=body,
                responses={"200": _ref("responses", _SEND), "202": _ref("responses", _SEND), **error},
            )
        }
        workflow = service.ty == model.ServiceType.WORKFLOW
        if workflow and handler.ty != model.HandlerType.WORKFLOW:
            continue
        base = (
            f"/restate/workflow/{name}/{{key}}"
            if workflow
            else f"/restate/invocation/{segment}/{handler.name}/{{idempotencyKey}}"
        )
        how = "a workflow target" if workflow else "idempotency information"
        not_found = {"404": _ref("responses", _NOT_FOUND)}
        attaches[f"{base}/attach"] = {
            "get": _operation(
                handler,
                operation_id=f"{handler.name}Attach",
                description=f"Deprecated: look the invocation id up with POST /restate/lookup and {how}, then"
                f" GET /restate/attach/{{invocationId}}. {docs or f'Wait for {name}/{handler.name} to finish.'}",
                parameters=lookup_parameters,
                tag="Attach",
                responses={"200": response, **not_found, **error},
                deprecated=True,
            )
        }
        outputs[f"{base}/output"] = {
            "get": _operation(
                handler,
                operation_id=f"{handler.name}Output",
                description=f"Deprecated: look the invocation id up with POST /restate/lookup and {how}, then"
                f" GET /restate/output/{{invocationId}}. {docs or f'The output of {name}/{handler.name}.'}",
                parameters=lookup_parameters,
                tag="Get Output",
                responses={"200": response, **not_found, "470": _ref("responses", _NOT_READY), **error},
                deprecated=True,
            )
        }
    return calls | sends | attaches | outputs


def _string() -> Json:
    return {"type": "string"}


def _error_response(description: str, example: Json) -> Json:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("schemas", _ERROR_SCHEMA), "example": example}},
    }


def _restate_components() -> Json:
    """The parameters, responses and schemas every service's contract shares (upstream's names)."""
    idempotency_docs = "See https://docs.restate.dev/invoke/http#invoke-a-handler-idempotently"
    return {
        "parameters": {
            _DELAY: {
                "name": "delay",
                "in": "query",
                "description": "Delay before the invocation runs, e.g. `10s` (a send only)",
                "required": False,
                "schema": _string(),
                "example": "10s",
            },
            _KEY: {"name": "key", "in": "path", "required": True, "schema": _string()},
            _IDEMPOTENCY_HEADER: {
                "name": "idempotency-key",
                "in": "header",
                "description": f"Idempotency key of the request. {idempotency_docs}",
                "required": False,
                "schema": _string(),
            },
            _IDEMPOTENCY_PATH: {
                "name": "idempotencyKey",
                "in": "path",
                "description": f"Idempotency key the request was sent with. {idempotency_docs}",
                "required": True,
                "schema": _string(),
            },
        },
        "responses": {
            _GENERIC_ERROR: _error_response(
                "Error response", {"code": 500, "message": "Internal server error", "source": "invocation"}
            ),
            _NOT_FOUND: _error_response(
                "Invocation not found", {"message": "invocation not found", "source": "ingress"}
            ),
            _NOT_READY: _error_response(
                "The invocation has not completed yet",
                {"message": "the invocation exists but has not completed yet", "source": "ingress"},
            ),
            _SEND: {
                "description": "Send response",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "title": "RestateSendResponse",
                            "properties": {
                                "invocationId": _string(),
                                "status": {"type": "string", "enum": ["Accepted", "PreviouslyAccepted"]},
                                "executionTime": {
                                    "type": "string",
                                    "format": "date-time",
                                    "description": "When a delayed invocation will run",
                                },
                            },
                            "required": ["invocationId", "status"],
                            "additionalProperties": False,
                        },
                        "example": {
                            "invocationId": "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz",
                            "status": "Accepted",
                        },
                    }
                },
            },
        },
        "schemas": {
            _ERROR_SCHEMA: {
                "type": "object",
                "title": "RestateError",
                "description": "A terminal error of an invocation, or an error of the ingress itself",
                "properties": {
                    "code": {"type": "number", "title": "error code"},
                    "message": {"type": "string", "title": "Error message"},
                    "source": {
                        "type": "string",
                        "title": "Error source",
                        "description": "`ingress` for errors of Restate itself (HTTP semantics), `invocation`"
                        " for the outcome of the invocation (its own code); also in `x-restate-error-source`",
                        "enum": ["ingress", "invocation"],
                    },
                    "stacktrace": {"type": "string", "title": "Stacktrace of the error"},
                    "metadata": {
                        "type": "object",
                        "title": "Additional metadata map",
                        "additionalProperties": {"type": "string"},
                    },
                },
                "required": ["message", "source"],
                "additionalProperties": False,
            }
        },
    }


def _tags() -> list[Json]:
    described = (
        ("Request Response", "Request response to handler"),
        ("Send", "Send to handler"),
        ("Attach", "Attach to invocation"),
        ("Get Output", "Get invocation output"),
    )
    return [{"name": name, "description": text, "externalDocs": {"url": _DOCS}} for name, text in described]


def service_openapi(service: model.Service, ingress_url: str) -> Json:
    """The OpenAPI 3.1 document of `service`'s public handlers, served from `ingress_url`."""
    collector = _Collector()
    paths = _paths(service, collector)
    components = _restate_components()
    components["schemas"] = collector.schemas | components["schemas"]  # the service's own come first
    info: Json = {"title": service.name, "version": str(service.revision)}
    if service.documentation:
        info["description"] = service.documentation
    if service.metadata:
        info["x-restate-extensions"] = dict(service.metadata)
    return {
        "openapi": "3.1.0",
        "info": info,
        "servers": [{"url": ingress_url, "description": "Restate Ingress URL"}],
        "paths": paths,
        "components": components,
        "tags": _tags(),
    }
