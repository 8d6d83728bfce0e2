"""``GET /openapi``: the admin API's OpenAPI 3.1 document, with its operations and component schemas.

Upstream generates it from its handlers (utoipa); here the operations are a table and the request and
response bodies are JSON schemas of the admin REST model, both written once, by hand. Operation ids,
tags, schema names and the shared error responses are upstream's, so clients generated from either
document look alike. A route registered by another component that the table does not describe is
still listed, with a plain operation, so the document never misses a path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from restate_server.admin.openapi_schemas import BOOLEAN, ERROR_RESPONSES, INTEGER, SCHEMAS, STRING, Json, ref

_ERRORS = {"400": "BadRequest", "404": "NotFound", "405": "MethodNotAllowed", "409": "Conflict"}
_ERRORS |= {"422": "UnprocessableEntity", "500": "InternalServerError"}


def _param(
    name: str, where: str, description: str, schema: Json = STRING, *, required: bool | None = None
) -> Json:
    return {
        "name": name,
        "in": where,
        "description": description,
        "required": where == "path" if required is None else required,
        "schema": schema,
    }


_DEPLOYMENT = _param("deployment", "path", "Deployment identifier")
_SERVICE = _param("service", "path", "Fully qualified service name")
_INVOCATION = _param("invocation_id", "path", "Invocation identifier")
_SUBSCRIPTION = _param("subscription", "path", "Subscription identifier")
_CLUSTER = _param("cluster_name", "path", "Kafka cluster name")


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    parameters: tuple[Json, ...] = ()
    request: str | None = None
    responses: dict[str, str | None] = field(default_factory=lambda: {"200": None})
    deprecated: bool = False
    errors: bool = True  # answers upstream's `MetaApiError` responses

    def document(self) -> Json:
        responses: Json = {}
        for status, schema in self.responses.items():
            response: Json = {"description": "Success" if status.startswith("2") else "Other outcome"}
            if schema is not None:
                response["content"] = {"application/json": {"schema": ref(schema)}}
            responses[status] = response
        for status, name in _ERRORS.items() if self.errors else ():
            responses.setdefault(status, {"$ref": f"#/components/responses/{name}"})
        doc: Json = {"tags": [self.tag], "summary": self.summary, "operationId": self.operation_id}
        if self.parameters:
            doc["parameters"] = list(self.parameters)
        if self.request is not None:
            doc["requestBody"] = {
                "content": {"application/json": {"schema": ref(self.request)}},
                "required": True,
            }
        doc["responses"] = dict(sorted(responses.items()))
        if self.deprecated:
            doc["deprecated"] = True
        return doc


def _invocation_op(action: str, operation_id: str, summary: str, *extra: Json, **fields: Any) -> Operation:
    return Operation(
        method="PATCH",
        path=f"/invocations/{{invocation_id}}/{action}",
        operation_id=operation_id,
        tag="invocation",
        summary=summary,
        parameters=(_INVOCATION, *extra),
        **fields,
    )


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="GET",
        path="/health",
        operation_id="health",
        tag="health",
        summary="Health check",
        errors=False,
    ),
    Operation(
        method="GET",
        path="/version",
        operation_id="version",
        tag="version",
        summary="Admin version information",
        responses={"200": "VersionInformation"},
        errors=False,
    ),
    Operation(
        method="GET",
        path="/cluster-health",
        operation_id="cluster_health",
        tag="cluster_health",
        summary="Cluster health",
        responses={"200": "ClusterHealthResponse"},
        errors=False,
    ),
    Operation(
        method="GET",
        path="/deployments",
        operation_id="list_deployments",
        tag="deployment",
        summary="List deployments",
        responses={"200": "ListDeploymentsResponse"},
    ),
    Operation(
        method="POST",
        path="/deployments",
        operation_id="create_deployment",
        tag="deployment",
        summary="Create deployment",
        request="RegisterDeploymentRequest",
        responses={"200": "RegisterDeploymentResponse", "201": "RegisterDeploymentResponse"},
    ),
    Operation(
        method="GET",
        path="/deployments/{deployment}",
        operation_id="get_deployment",
        tag="deployment",
        summary="Get deployment",
        parameters=(_DEPLOYMENT,),
        responses={"200": "DetailedDeploymentResponse"},
    ),
    Operation(
        method="DELETE",
        path="/deployments/{deployment}",
        operation_id="delete_deployment",
        tag="deployment",
        summary="Delete deployment",
        parameters=(_DEPLOYMENT, _param("force", "query", "Remove it even if in use", BOOLEAN)),
        responses={"202": None, "501": None},
    ),
    Operation(
        method="PATCH",
        path="/deployments/{deployment}",
        operation_id="update_deployment",
        tag="deployment",
        summary="Update deployment",
        parameters=(_DEPLOYMENT,),
        request="UpdateDeploymentRequest",
        responses={"200": "DetailedDeploymentResponse"},
    ),
    Operation(
        method="GET",
        path="/services",
        operation_id="list_services",
        tag="service",
        summary="List services",
        responses={"200": "ListServicesResponse"},
    ),
    Operation(
        method="GET",
        path="/services/{service}",
        operation_id="get_service",
        tag="service",
        summary="Get service",
        parameters=(_SERVICE,),
        responses={"200": "ServiceMetadata"},
    ),
    Operation(
        method="PATCH",
        path="/services/{service}",
        operation_id="modify_service",
        tag="service",
        summary="Modify service",
        parameters=(_SERVICE,),
        request="ModifyServiceRequest",
        responses={"200": "ServiceMetadata"},
    ),
    Operation(
        method="GET",
        path="/services/{service}/openapi",
        operation_id="get_service_openapi",
        tag="service",
        summary="Get service OpenAPI",
        parameters=(_SERVICE,),
    ),
    Operation(
        method="POST",
        path="/services/{service}/state",
        operation_id="modify_service_state",
        tag="service",
        summary="Modify service state",
        parameters=(_SERVICE,),
        request="ModifyServiceStateRequest",
        responses={"202": None},
    ),
    Operation(
        method="GET",
        path="/services/{service}/handlers",
        operation_id="list_service_handlers",
        tag="service_handler",
        summary="List service handlers",
        parameters=(_SERVICE,),
        responses={"200": "ListServiceHandlersResponse"},
    ),
    Operation(
        method="GET",
        path="/services/{service}/handlers/{handler}",
        operation_id="get_service_handler",
        tag="service_handler",
        summary="Get service handler",
        parameters=(_SERVICE, _param("handler", "path", "Handler name")),
        responses={"200": "HandlerMetadata"},
    ),
    Operation(
        method="DELETE",
        path="/invocations/{invocation_id}",
        operation_id="delete_invocation",
        tag="invocation",
        summary="Delete an invocation (deprecated: kill, cancel or purge instead)",
        parameters=(_INVOCATION, _param("mode", "query", "Cancel, Kill or Purge")),
        responses={"202": None},
        deprecated=True,
    ),
    _invocation_op("kill", "kill_invocation", "Kill an invocation"),
    _invocation_op(
        "cancel", "cancel_invocation", "Cancel an invocation", responses={"200": None, "202": None}
    ),
    _invocation_op("purge", "purge_invocation", "Purge a completed invocation"),
    _invocation_op("purge-journal", "purge_journal", "Purge the journal of a completed invocation"),
    _invocation_op(
        "restart-as-new",
        "restart_as_new_invocation",
        "Restart a completed invocation as a new one",
        _param("from", "query", "Copy the journal up to this index", INTEGER),
        _param("deployment", "query", "latest, keep, or a deployment id"),
        responses={"200": "RestartAsNewInvocationResponse", "410": None, "425": None},
    ),
    _invocation_op(
        "resume",
        "resume_invocation",
        "Resume an invocation",
        _param("deployment", "query", "latest, keep, or a deployment id"),
        responses={"200": None, "425": None},
    ),
    _invocation_op("pause", "pause_invocation", "Pause an invocation", responses={"200": None, "202": None}),
    Operation(
        method="POST",
        path="/subscriptions",
        operation_id="create_subscription",
        tag="subscription",
        summary="Create subscription",
        request="CreateSubscriptionRequest",
        responses={"201": "SubscriptionResponse"},
    ),
    Operation(
        method="GET",
        path="/subscriptions",
        operation_id="list_subscriptions",
        tag="subscription",
        summary="List subscriptions",
        parameters=(
            _param("sink", "query", "Only subscriptions with this sink"),
            _param("source", "query", "Only subscriptions with this source"),
        ),
        responses={"200": "ListSubscriptionsResponse"},
    ),
    Operation(
        method="GET",
        path="/subscriptions/{subscription}",
        operation_id="get_subscription",
        tag="subscription",
        summary="Get subscription",
        parameters=(_SUBSCRIPTION,),
        responses={"200": "SubscriptionResponse"},
    ),
    Operation(
        method="DELETE",
        path="/subscriptions/{subscription}",
        operation_id="delete_subscription",
        tag="subscription",
        summary="Delete subscription",
        parameters=(_SUBSCRIPTION,),
        responses={"202": None},
    ),
    Operation(
        method="POST",
        path="/kafka-clusters",
        operation_id="create_kafka_cluster",
        tag="kafka_cluster",
        summary="Create Kafka cluster",
        request="CreateKafkaClusterRequest",
        responses={"201": "SimpleKafkaClusterResponse"},
    ),
    Operation(
        method="GET",
        path="/kafka-clusters",
        operation_id="list_kafka_clusters",
        tag="kafka_cluster",
        summary="List Kafka clusters",
        responses={"200": "ListKafkaClustersResponse"},
    ),
    Operation(
        method="GET",
        path="/kafka-clusters/{cluster_name}",
        operation_id="get_kafka_cluster",
        tag="kafka_cluster",
        summary="Get Kafka cluster",
        parameters=(
            _CLUSTER,
            _param("include_subscriptions", "query", "List the cluster's subscriptions too", BOOLEAN),
        ),
        responses={"200": "KafkaClusterResponse"},
    ),
    Operation(
        method="PATCH",
        path="/kafka-clusters/{cluster_name}",
        operation_id="update_kafka_cluster",
        tag="kafka_cluster",
        summary="Update Kafka cluster",
        parameters=(_CLUSTER,),
        request="UpdateKafkaClusterRequest",
        responses={"200": "SimpleKafkaClusterResponse"},
    ),
    Operation(
        method="DELETE",
        path="/kafka-clusters/{cluster_name}",
        operation_id="delete_kafka_cluster",
        tag="kafka_cluster",
        summary="Delete Kafka cluster",
        parameters=(_CLUSTER, _param("force", "query", "Delete its subscriptions too", BOOLEAN)),
        responses={"202": None},
    ),
    Operation(
        method="POST",
        path="/query",
        operation_id="query",
        tag="introspection",
        summary="Run a SQL query (JSON with `accept: application/json`, else an Arrow IPC stream)",
        request="QueryRequest",
    ),
)

TAGS = (
    ("deployment", "Service deployments"),
    ("invocation", "Invocations"),
    ("subscription", "Kafka subscriptions"),
    ("kafka_cluster", "Kafka clusters"),
    ("service", "Services"),
    ("service_handler", "Handlers of services"),
    ("cluster_health", "Cluster health"),
    ("health", "Admin API health"),
    ("version", "Admin API version"),
    ("introspection", "SQL introspection"),
    ("rule", "Limiter rules"),
)


def _registered(app: web.Application) -> dict[str, set[str]]:
    """The unprefixed routes the app serves: path -> methods."""
    routes: dict[str, set[str]] = {}
    for resource in app.router.resources():
        path = resource.canonical
        if path.startswith(("/v1", "/v2", "/v3", "/v4")) or path == "/":
            continue
        for route in resource:
            if route.method not in ("HEAD", "*"):
                routes.setdefault(path, set()).add(route.method)
    return routes


def document(app: web.Application, version: str) -> Json:
    """The OpenAPI document of what `app` serves (the deprecated `PUT /deployments/{id}` left out)."""
    registered = _registered(app)
    paths: Json = {}
    for op in OPERATIONS:
        if op.method in registered.get(op.path, ()):
            paths.setdefault(op.path, {})[op.method.lower()] = op.document()
    for path, methods in sorted(registered.items()):
        for method in sorted(methods - {"PUT"}):
            paths.setdefault(path, {}).setdefault(
                method.lower(), {"responses": {"200": {"description": "Success"}}}
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Admin API",
            "description": "Admin operations of a Restate server: deployments, services, invocations, "
            "subscriptions and SQL introspection.",
            "license": {"name": "MIT", "url": "https://opensource.org/license/mit"},
            "version": version,
        },
        "paths": paths,
        "components": {"schemas": SCHEMAS, "responses": ERROR_RESPONSES},
        "tags": [{"name": name, "description": text} for name, text in TAGS],
    }
