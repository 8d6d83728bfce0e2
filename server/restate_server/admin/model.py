"""The admin API's JSON shapes (upstream's ``admin-rest-model``), rendered from schema records.

Field order, omitted-when-empty fields, friendly durations (``1d``, ``10m``) and the textual input and
output descriptions follow what the real server 1.7 returns, key for key, because the CLI and UI parse
them. Server defaults (retention, timeouts, retry policy) are filled in from the configuration, as
upstream does when it describes a service.
"""

from __future__ import annotations

import datetime
from typing import Any, Protocol

from restate_server.config.units import format_duration
from restate_server.protocol import discovery
from restate_server.schema import model
from restate_server.schema.options import ServerDefaults, resolve_retry_policy

Json = dict[str, Any]


class _Describable(Protocol):
    @property
    def json_schema(self) -> Any: ...


def _json_detail(rules: _Describable) -> str | None:
    """``JSON 'Title'`` or ``JSON <type>`` when the schema says so (upstream's description rule)."""
    schema = rules.json_schema
    if isinstance(schema, dict):
        if isinstance(schema.get("title"), str):
            return f"JSON '{schema['title']}'"
        if isinstance(schema.get("type"), str):
            return f"JSON {schema['type']}"
    return None


def _content_type_display(content_type: str) -> str:
    main, _, sub = content_type.strip().partition("/")
    return "*/*" if (main, sub) == ("*", "*") else f"{main}/{sub}"


def input_description(rules: model.InputRules) -> str:
    """How the input rules read in ``input_description`` (e.g. ``none``, ``JSON string``, ``*/*``)."""
    shown: list[str] = []
    if not rules.required:
        shown.append("none")
    if rules.content_type is not None:
        shown.append(_json_detail(rules) or _content_type_display(rules.content_type))
    if not shown:
        return "<invalid rules>"
    if len(shown) == 1:
        return shown[0]
    return shown[1]  # "none" plus one rule reads as that rule (upstream issue #2101)


def output_description(rules: model.OutputRules) -> str:
    """How the output rules read in ``output_description``."""
    detail = _json_detail(rules)
    if detail is not None:
        return detail
    if rules.content_type is None:
        return "none"
    return ("optional " if rules.set_content_type_if_empty else "") + rules.content_type


def _put(doc: Json, key: str, value: Any) -> None:
    """Set ``key`` unless the value is absent or empty (upstream's ``skip_serializing_if``)."""
    if value is None or (isinstance(value, dict | list) and not value):
        return
    doc[key] = value


def _friendly(seconds: float | None) -> str | None:
    return None if seconds is None else format_duration(seconds)


def _on_max_attempts(value: str) -> str:
    return "Kill" if value.lower() == "kill" else "Pause"


def _inactivity_info(timeout: float | None, request_response: bool, what: str) -> list[Json]:
    """Upstream's RT0021 note: request/response deployments never see the inactivity timeout."""
    if timeout is None or not request_response:
        return []
    message = (
        f"The configured inactivity_timeout {format_duration(timeout)} will not be applied because the {what} "
        "is exposed in Request/Response mode."
    )
    return [{"code": "RT0021", "message": message}]


def handler_metadata(handler: model.Handler, protocol_type: model.ProtocolType | None) -> Json:
    """``HandlerMetadata``: only what the handler itself overrides, plus its descriptions."""
    request_response = protocol_type is model.ProtocolType.REQUEST_RESPONSE
    doc: Json = {"name": handler.name}
    _put(doc, "ty", None if handler.ty is None else str(handler.ty))
    _put(doc, "documentation", handler.documentation)
    _put(doc, "metadata", dict(handler.metadata))
    _put(doc, "idempotency_retention", _friendly(handler.idempotency_retention))
    _put(doc, "journal_retention", _friendly(handler.journal_retention))
    _put(doc, "inactivity_timeout", None if request_response else _friendly(handler.inactivity_timeout))
    _put(doc, "abort_timeout", _friendly(handler.abort_timeout))
    _put(doc, "enable_lazy_state", handler.enable_lazy_state)
    doc["public"] = handler.public
    doc["input_description"] = input_description(handler.input)
    doc["output_description"] = output_description(handler.output)
    _put(doc, "input_json_schema", handler.input.json_schema if handler.input.content_type else None)
    _put(doc, "output_json_schema", handler.output.json_schema)
    policy = handler.retry_policy
    retry: Json = {}
    _put(retry, "initial_interval", _friendly(policy.initial_interval))
    _put(retry, "exponentiation_factor", policy.exponentiation_factor)
    retry["max_attempts"] = policy.max_attempts
    _put(retry, "max_interval", _friendly(policy.max_interval))
    _put(
        retry,
        "on_max_attempts",
        None if policy.on_max_attempts is None else _on_max_attempts(policy.on_max_attempts),
    )
    doc["retry_policy"] = retry
    _put(doc, "info", _inactivity_info(handler.inactivity_timeout, request_response, "handler"))
    return doc


def _workflow_retention(service: model.Service, config: ServerDefaults) -> float | None:
    if service.ty is not model.ServiceType.WORKFLOW:
        return None
    for handler in service.handlers.values():
        if handler.workflow_completion_retention is not None:
            return handler.workflow_completion_retention
    if service.workflow_completion_retention is not None:
        return service.workflow_completion_retention
    return config.default_workflow_completion_retention


def service_metadata(
    service: model.Service, protocol_type: model.ProtocolType | None, config: ServerDefaults
) -> Json:
    """``ServiceMetadata`` with the server defaults resolved."""
    request_response = protocol_type is model.ProtocolType.REQUEST_RESPONSE
    invoker = config.worker.invoker
    doc: Json = {
        "name": service.name,
        "ty": str(service.ty),
        "handlers": [handler_metadata(h, protocol_type) for h in service.handlers.values()],
    }
    _put(doc, "documentation", service.documentation)
    _put(doc, "metadata", dict(service.metadata))
    doc["deployment_id"] = service.deployment_id
    doc["revision"] = service.revision
    doc["public"] = service.public
    idempotency = service.idempotency_retention
    doc["idempotency_retention"] = format_duration(
        config.default_idempotency_retention if idempotency is None else idempotency
    )
    _put(doc, "workflow_completion_retention", _friendly(_workflow_retention(service, config)))
    journal = service.journal_retention
    if journal is None and config.default_journal_retention > 0:
        journal = config.default_journal_retention
    _put(doc, "journal_retention", _friendly(journal))
    # ours, not upstream's: shown only once overridden, so the default document stays byte-equal
    _put(doc, "state_history_retention", _friendly(service.state_history_retention))
    inactivity = (
        service.inactivity_timeout if service.inactivity_timeout is not None else invoker.inactivity_timeout
    )
    doc["inactivity_timeout"] = format_duration(0 if request_response else inactivity)
    abort = service.abort_timeout if service.abort_timeout is not None else invoker.abort_timeout
    doc["abort_timeout"] = format_duration(abort)
    doc["enable_lazy_state"] = service.enable_lazy_state
    retry = resolve_retry_policy(config.default_retry_policy, service.retry_policy)
    doc["retry_policy"] = {
        "initial_interval": format_duration(retry.initial_interval),
        "exponentiation_factor": float(retry.exponentiation_factor),
        "max_attempts": retry.max_attempts,
        "max_interval": _friendly(retry.max_interval),
        "on_max_attempts": _on_max_attempts(retry.on_max_attempts),
    }
    _put(doc, "info", _inactivity_info(service.inactivity_timeout, request_response, "service"))
    return doc


def timestamp(epoch_ms: int) -> str:
    """RFC 3339 in UTC as upstream prints it: nanosecond digits when there is a fraction."""
    seconds, millis = divmod(epoch_ms, 1000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{moment}.{millis * 1_000_000:09d}Z" if millis else f"{moment}Z"


def _deployment_head(deployment: model.Deployment) -> Json:
    doc: Json = {
        "id": deployment.id,
        "uri": deployment.uri,
        "protocol_type": str(deployment.protocol_type),
        "http_version": discovery.HTTP_11 if deployment.use_http_11 else discovery.HTTP_2,
    }
    _put(doc, "additional_headers", dict(deployment.additional_headers))
    _put(doc, "metadata", dict(deployment.metadata))
    doc["created_at"] = timestamp(deployment.created_at)
    doc["min_protocol_version"] = deployment.min_protocol_version
    doc["max_protocol_version"] = deployment.max_protocol_version
    _put(doc, "sdk_version", deployment.sdk_version)
    return doc


def deployment_response(deployment: model.Deployment) -> Json:
    """``DeploymentResponse``: the deployment with the name and revision of each service it offers."""
    doc = _deployment_head(deployment)
    doc["services"] = [{"name": s.name, "revision": s.revision} for s in deployment.services.values()]
    return doc


def detailed_deployment_response(deployment: model.Deployment, config: ServerDefaults) -> Json:
    """``DetailedDeploymentResponse``: the deployment with full metadata of what it offers."""
    doc = _deployment_head(deployment)
    doc["services"] = [
        service_metadata(s, deployment.protocol_type, config) for s in deployment.services.values()
    ]
    return doc


def register_response(deployment: model.Deployment, config: ServerDefaults) -> Json:
    """``RegisterDeploymentResponse``."""
    doc: Json = {
        "id": deployment.id,
        "services": [
            service_metadata(s, deployment.protocol_type, config) for s in deployment.services.values()
        ],
        "min_protocol_version": deployment.min_protocol_version,
        "max_protocol_version": deployment.max_protocol_version,
    }
    _put(doc, "sdk_version", deployment.sdk_version)
    return doc
