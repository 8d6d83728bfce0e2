"""Turning a discovered endpoint manifest into schema records, with upstream's validation rules.

Pure functions: the registry calls them while computing a new schema, and a refused manifest raises a
:class:`~restate_server.schema.errors.SchemaError` before anything changes. Manifest durations are
milliseconds; schema durations are seconds.
"""

from __future__ import annotations

from types import MappingProxyType

from restate_server.protocol import discovery
from restate_server.schema import errors, model

_SERVICE_TYPES = {
    "SERVICE": model.ServiceType.SERVICE,
    "VIRTUAL_OBJECT": model.ServiceType.VIRTUAL_OBJECT,
    "WORKFLOW": model.ServiceType.WORKFLOW,
}
# (service type, declared handler type) -> handler type; any other pair is refused, as upstream does.
# Note an undeclared handler type in a workflow means a shared handler, not the workflow's run.
_HANDLER_TYPES: dict[tuple[model.ServiceType, str | None], model.HandlerType | None] = {
    (model.ServiceType.SERVICE, None): None,
    (model.ServiceType.SERVICE, "SHARED"): None,
    (model.ServiceType.VIRTUAL_OBJECT, None): model.HandlerType.EXCLUSIVE,
    (model.ServiceType.VIRTUAL_OBJECT, "EXCLUSIVE"): model.HandlerType.EXCLUSIVE,
    (model.ServiceType.VIRTUAL_OBJECT, "SHARED"): model.HandlerType.SHARED,
    (model.ServiceType.WORKFLOW, None): model.HandlerType.SHARED,
    (model.ServiceType.WORKFLOW, "SHARED"): model.HandlerType.SHARED,
    (model.ServiceType.WORKFLOW, "WORKFLOW"): model.HandlerType.WORKFLOW,
}
_DEFAULT_OUTPUT = model.OutputRules(content_type="application/json")


def _seconds(millis: int | None) -> float | None:
    return None if millis is None else millis / 1000


def check_service_name(name: str) -> None:
    """Refuse names reserved for the server's own endpoints (META0005)."""
    lower = name.lower()
    if lower.startswith("restate") or lower == "openapi":
        raise errors.ReservedName(name)


def service_type(manifest: discovery.ServiceManifest) -> model.ServiceType:
    """The schema type of a manifest service."""
    return _SERVICE_TYPES[manifest.ty]


def _retry_policy(options: discovery.Options) -> model.RetryPolicy:
    attempts = options.retry_max_attempts
    return model.RetryPolicy(
        initial_interval=_seconds(options.retry_initial_interval),
        exponentiation_factor=options.retry_exponentiation_factor,
        max_attempts=None if attempts is None else max(attempts, 1),  # upstream clamps 0 to 1
        max_interval=_seconds(options.retry_max_interval),
        on_max_attempts=None
        if options.retry_on_max_attempts is None
        else options.retry_on_max_attempts.lower(),
    )


def _check_input_content_type(handler: str, content_type: str) -> None:
    main, slash, sub = content_type.strip().partition("/")
    reason = None
    if not slash:
        reason = "must contain one /"
    elif main == "*" and sub != "*":
        reason = "the wildcard format */subType is not supported"
    if reason:
        raise errors.InvalidService(
            f"the handler '{handler}' input content-type is not valid: "
            f"can't parse the content-type '{content_type}': {reason}"
        )


def _input_rules(handler: str, manifest: discovery.InputManifest | None) -> model.InputRules:
    if manifest is None:
        return model.InputRules()
    if manifest.content_type is not None:
        _check_input_content_type(handler, manifest.content_type)
    return model.InputRules(
        required=bool(manifest.required),
        content_type=manifest.content_type,
        json_schema=manifest.json_schema if manifest.content_type is not None else None,
    )


def _output_rules(manifest: discovery.OutputManifest | None) -> model.OutputRules:
    if manifest is None:
        return _DEFAULT_OUTPUT
    if manifest.content_type is None:
        return model.OutputRules(content_type=None)
    return model.OutputRules(
        content_type=manifest.content_type,
        set_content_type_if_empty=bool(manifest.set_content_type_if_empty),
        json_schema=manifest.json_schema,
    )


def build_handler(
    service_name: str, ty: model.ServiceType, service_public: bool, manifest: discovery.HandlerManifest
) -> model.Handler:
    """One handler record, refusing the combinations upstream refuses."""
    key = (ty, manifest.ty)
    if key not in _HANDLER_TYPES:
        declared = "None" if manifest.ty is None else f"Some({manifest.ty.title()})"
        raise errors.InvalidService(
            f"invalid combination of service type and handler type '({ty}, {declared})'"
        )
    handler_ty = _HANDLER_TYPES[key]
    opts = manifest.options
    if opts.workflow_completion_retention is not None and handler_ty is not model.HandlerType.WORKFLOW:
        raise errors.InvalidService(
            f"{manifest.name} sets the workflow_completion_retention, but it's not a WORKFLOW handler"
        )
    if opts.idempotency_retention is not None and handler_ty is model.HandlerType.WORKFLOW:
        raise errors.InvalidService(
            f"{manifest.name} sets the idempotency_retention, but it's a WORKFLOW handler"
        )
    if not service_public and opts.ingress_private is False:
        raise errors.InvalidService(
            f"The service {service_name} is private, but the {manifest.name} is explicitly set as public. "
            "This is not supported. Please make the service public, and hide the individual handlers"
        )
    override = None if opts.ingress_private is None else not opts.ingress_private
    return model.Handler(
        name=manifest.name,
        ty=handler_ty,
        input=_input_rules(manifest.name, manifest.input),
        output=_output_rules(manifest.output),
        public=service_public if override is None else override,
        public_override=override,
        documentation=opts.documentation,
        metadata=MappingProxyType(dict(opts.metadata)),
        inactivity_timeout=_seconds(opts.inactivity_timeout),
        abort_timeout=_seconds(opts.abort_timeout),
        journal_retention=_seconds(opts.journal_retention),
        idempotency_retention=_seconds(opts.idempotency_retention),
        workflow_completion_retention=_seconds(opts.workflow_completion_retention),
        enable_lazy_state=opts.enable_lazy_state,
        retry_policy=_retry_policy(opts),
    )


def build_service(manifest: discovery.ServiceManifest, *, deployment_id: str, revision: int) -> model.Service:
    """One service revision as offered by ``deployment_id``."""
    check_service_name(manifest.name)
    ty = service_type(manifest)
    opts = manifest.options
    public = True if opts.ingress_private is None else not opts.ingress_private
    handlers = {h.name: build_handler(manifest.name, ty, public, h) for h in manifest.handlers}
    return model.Service(
        name=manifest.name,
        ty=ty,
        handlers=MappingProxyType(handlers),
        deployment_id=deployment_id,
        revision=revision,
        public=public,
        documentation=opts.documentation,
        metadata=MappingProxyType(dict(opts.metadata)),
        idempotency_retention=_seconds(opts.idempotency_retention),
        journal_retention=_seconds(opts.journal_retention),
        inactivity_timeout=_seconds(opts.inactivity_timeout),
        abort_timeout=_seconds(opts.abort_timeout),
        enable_lazy_state=bool(opts.enable_lazy_state),
        retry_policy=_retry_policy(opts),
    )
