"""The component schemas of the admin API's OpenAPI document: the admin REST model as JSON schemas.

Upstream derives them from its Rust model (`admin-rest-model`); here they are written once, under
upstream's schema names, and referenced by the operations in :mod:`restate_server.admin.openapi`.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

STRING: Json = {"type": "string"}
INTEGER: Json = {"type": "integer", "format": "int32", "minimum": 0}
BOOLEAN: Json = {"type": "boolean"}
DURATION: Json = {"type": "string", "description": "A duration, friendly (`1h 5m`) or ISO 8601 (`PT1H5M`)"}


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Json) -> Json:
    return {"oneOf": [{"type": "null"}, schema]}


def array(items: Json) -> Json:
    return {"type": "array", "items": items}


def string_map() -> Json:
    return {"type": "object", "additionalProperties": STRING}


def obj(title: str, required: dict[str, Json], optional: dict[str, Json] | None = None) -> Json:
    return {
        "type": "object",
        "title": title,
        "required": list(required),
        "properties": required | (optional or {}),
    }


_RETRY = obj(
    "RetryPolicy",
    {},
    {
        "initial_interval": DURATION,
        "exponentiation_factor": {"type": "number", "format": "float"},
        "max_attempts": nullable(INTEGER),
        "max_interval": DURATION,
        "on_max_attempts": {"type": "string", "enum": ["Pause", "Kill"]},
    },
)
_SERVICE_OPTIONS = {
    "idempotency_retention": DURATION,
    "journal_retention": DURATION,
    "inactivity_timeout": DURATION,
    "abort_timeout": DURATION,
    "enable_lazy_state": BOOLEAN,
    "retry_policy": ref("RetryPolicy"),
}
_DEPLOYMENT_COMMON = {
    "id": STRING,
    "created_at": STRING,
    "min_protocol_version": INTEGER,
    "max_protocol_version": INTEGER,
}
_SERVICE_REVISION = obj("ServiceNameRevPair", {"name": STRING, "revision": INTEGER})


def _deployment(title: str, services: Json) -> Json:
    http = obj(
        f"Http{title}",
        {**_DEPLOYMENT_COMMON, "uri": STRING, "protocol_type": ref("ProtocolType"), "http_version": STRING},
        {
            "additional_headers": string_map(),
            "metadata": string_map(),
            "sdk_version": STRING,
            "services": services,
        },
    )
    lambda_ = obj(
        f"Lambda{title}",
        {**_DEPLOYMENT_COMMON, "arn": STRING},
        {
            "assume_role_arn": STRING,
            "compression": STRING,
            "additional_headers": string_map(),
            "metadata": string_map(),
            "sdk_version": STRING,
            "services": services,
        },
    )
    return {"title": title, "oneOf": [http, lambda_]}


SCHEMAS: Json = {
    "ErrorDescriptionResponse": obj(
        "Error description response", {"message": STRING}, {"restate_code": nullable(STRING)}
    ),
    "VersionInformation": obj(
        "Admin version information",
        {
            "version": STRING,
            "min_admin_api_version": INTEGER,
            "max_admin_api_version": INTEGER,
            "ingress_endpoint": {"type": "string", "format": "uri"},
        },
        {"features": {"type": "object", "additionalProperties": BOOLEAN}},
    ),
    "ClusterHealthResponse": obj(
        "Cluster health",
        {"cluster_name": STRING},
        {"metadata_cluster_health": obj("MetadataClusterHealth", {"members": array(INTEGER)})},
    ),
    "ProtocolType": {"type": "string", "enum": ["RequestResponse", "BidiStream"]},
    "ServiceType": {"type": "string", "enum": ["Service", "VirtualObject", "Workflow"]},
    "HandlerMetadataType": {"type": "string", "enum": ["Exclusive", "Shared", "Workflow"]},
    "RetryPolicy": _RETRY,
    "HandlerMetadata": obj(
        "Handler metadata",
        {"name": STRING, "input_description": STRING, "output_description": STRING},
        {
            "ty": ref("HandlerMetadataType"),
            "documentation": STRING,
            "metadata": string_map(),
            "public": BOOLEAN,
            "input_json_schema": {},
            "output_json_schema": {},
            **_SERVICE_OPTIONS,
        },
    ),
    "ServiceMetadata": obj(
        "Service metadata",
        {
            "name": STRING,
            "handlers": array(ref("HandlerMetadata")),
            "ty": ref("ServiceType"),
            "deployment_id": STRING,
            "revision": INTEGER,
            "public": BOOLEAN,
        },
        {
            "documentation": STRING,
            "metadata": string_map(),
            "workflow_completion_retention": DURATION,
            **_SERVICE_OPTIONS,
        },
    ),
    "ListServicesResponse": obj("ListServicesResponse", {"services": array(ref("ServiceMetadata"))}),
    "ListServiceHandlersResponse": obj(
        "ListServiceHandlersResponse", {"handlers": array(ref("HandlerMetadata"))}
    ),
    "ModifyServiceRequest": obj(
        "ModifyServiceRequest",
        {},
        {
            "public": BOOLEAN,
            "idempotency_retention": DURATION,
            "workflow_completion_retention": DURATION,
            "journal_retention": DURATION,
            "inactivity_timeout": DURATION,
            "abort_timeout": DURATION,
        },
    ),
    "ModifyServiceStateRequest": obj(
        "ModifyServiceStateRequest",
        {
            "object_key": STRING,
            "new_state": {"type": "object", "additionalProperties": array({"type": "integer", "minimum": 0})},
        },
        {"version": nullable(STRING), "scope": nullable(STRING)},
    ),
    "RegisterDeploymentRequest": {
        "title": "RegisterDeploymentRequest",
        "oneOf": [
            obj(
                "RegisterHttpDeploymentRequest",
                {"uri": STRING},
                {
                    "additional_headers": string_map(),
                    "metadata": string_map(),
                    "use_http_11": BOOLEAN,
                    "breaking": BOOLEAN,
                    "force": nullable(BOOLEAN),
                    "dry_run": BOOLEAN,
                },
            ),
            obj(
                "RegisterLambdaDeploymentRequest",
                {"arn": STRING},
                {
                    "assume_role_arn": STRING,
                    "additional_headers": string_map(),
                    "metadata": string_map(),
                    "breaking": BOOLEAN,
                    "force": nullable(BOOLEAN),
                    "dry_run": BOOLEAN,
                },
            ),
        ],
    },
    "RegisterDeploymentResponse": obj(
        "RegisterDeploymentResponse",
        {"id": STRING, "services": array(ref("ServiceMetadata"))},
        {"min_protocol_version": INTEGER, "max_protocol_version": INTEGER, "sdk_version": STRING},
    ),
    "UpdateDeploymentRequest": {
        "title": "UpdateDeploymentRequest",
        "oneOf": [
            obj(
                "UpdateHttpDeploymentRequest",
                {},
                {
                    "uri": STRING,
                    "additional_headers": string_map(),
                    "use_http_11": BOOLEAN,
                    "overwrite": BOOLEAN,
                    "dry_run": BOOLEAN,
                },
            ),
            obj(
                "UpdateLambdaDeploymentRequest",
                {},
                {
                    "arn": STRING,
                    "assume_role_arn": STRING,
                    "additional_headers": string_map(),
                    "dry_run": BOOLEAN,
                },
            ),
        ],
    },
    "ServiceNameRevPair": _SERVICE_REVISION,
    "DeploymentResponse": _deployment("DeploymentResponse", array(ref("ServiceNameRevPair"))),
    "DetailedDeploymentResponse": _deployment("DetailedDeploymentResponse", array(ref("ServiceMetadata"))),
    "ListDeploymentsResponse": obj(
        "ListDeploymentsResponse", {"deployments": array(ref("DeploymentResponse"))}
    ),
    "RestartAsNewInvocationResponse": obj("RestartAsNewInvocationResponse", {"new_invocation_id": STRING}),
    "CreateSubscriptionRequest": obj(
        "CreateSubscriptionRequest", {"source": STRING, "sink": STRING}, {"options": string_map()}
    ),
    "SubscriptionResponse": obj(
        "SubscriptionResponse", {"id": STRING, "source": STRING, "sink": STRING, "options": string_map()}
    ),
    "ListSubscriptionsResponse": obj(
        "ListSubscriptionsResponse", {"subscriptions": array(ref("SubscriptionResponse"))}
    ),
    "QueryRequest": obj("QueryRequest", {"query": STRING}),
    "CreateKafkaClusterRequest": obj(
        "CreateKafkaClusterRequest", {"name": STRING, "properties": string_map()}
    ),
    "UpdateKafkaClusterRequest": obj("UpdateKafkaClusterRequest", {"properties": string_map()}),
    "SimpleKafkaClusterResponse": obj(
        "SimpleKafkaClusterResponse",
        {"name": STRING, "properties": string_map(), "created_at": STRING},
        {"info": array({})},
    ),
    "KafkaClusterResponse": obj(
        "KafkaClusterResponse",
        {"name": STRING, "properties": string_map(), "created_at": STRING},
        {"subscriptions": array(ref("SubscriptionResponse")), "info": array({})},
    ),
    "ListKafkaClustersResponse": obj(
        "ListKafkaClustersResponse", {"clusters": array(ref("SimpleKafkaClusterResponse"))}
    ),
}

ERROR_RESPONSES: Json = {
    name: {
        "description": description,
        "content": {"application/json": {"schema": ref("ErrorDescriptionResponse")}},
    }
    for name, description in (
        ("BadRequest", "Bad request"),
        ("NotFound", "Not found"),
        ("MethodNotAllowed", "Method not allowed"),
        ("Conflict", "Conflict"),
        ("UnprocessableEntity", "Unprocessable entity"),
        ("InternalServerError", "Internal server error"),
    )
}
