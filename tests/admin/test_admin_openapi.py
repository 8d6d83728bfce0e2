"""The admin API's OpenAPI document: every operation upstream documents, with resolvable components."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from admin_fixtures import Client
from restate_server.admin import invocations, openapi, query
from restate_server.admin.app import AdminContext, create_admin_app
from restate_server.config import Config
from restate_server.metadata.providers.memory import MemoryMetadataStore
from restate_server.schema.registry import SchemaRegistry


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


async def _full_app_document() -> dict[str, Any]:
    registry = await SchemaRegistry.load(MemoryMetadataStore())
    ctx = AdminContext(registry=registry, config=Config(cluster_name="c"))
    app = create_admin_app(ctx, extra=[query.register, invocations.register])
    return openapi.document(app, "1.7.12")


async def test_every_operation_is_documented_with_upstreams_id() -> None:
    doc = await _full_app_document()
    ids = {op["operationId"] for item in doc["paths"].values() for op in item.values() if "operationId" in op}
    served = {op.operation_id for op in openapi.OPERATIONS if op.tag not in ("subscription", "kafka_cluster")}
    assert ids == served  # subscriptions and Kafka clusters are documented when their routes are added
    assert {"modify_service_state", "restart_as_new_invocation", "purge_journal", "query"} <= ids
    restart = doc["paths"]["/invocations/{invocation_id}/restart-as-new"]["patch"]
    assert restart["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RestartAsNewInvocationResponse"
    }
    assert "put" not in doc["paths"]["/deployments/{deployment}"]  # deprecated, undocumented upstream


async def test_every_reference_resolves() -> None:
    doc = await _full_app_document()
    for reference in set(_refs(doc)):
        node: Any = doc
        for part in reference.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict), reference
    assert {"BadRequest", "NotFound", "Conflict", "InternalServerError"} <= set(
        doc["components"]["responses"]
    )


async def test_served_document_has_components(admin: Client) -> None:
    doc = await (await admin.get("/openapi")).json()
    assert "ServiceMetadata" in doc["components"]["schemas"]
    assert doc["paths"]["/deployments"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RegisterDeploymentRequest"
    }
