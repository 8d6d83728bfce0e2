"""``/services`` and handlers: JSON shapes byte for byte as the real server 1.7.12, and overrides."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sdk_fixtures import SdkService

Client = TestClient  # type: ignore[type-arg]

# Captured from restate-server 1.7.12 (reference/real-server-responses.md), deployment id elided.
COUNTER = (
    '{"name":"Counter","ty":"VirtualObject","handlers":[{"name":"add","ty":"Exclusive","public":true,'
    '"input_description":"JSON integer","output_description":"JSON integer","input_json_schema":{"type":"integer"},'
    '"output_json_schema":{"type":"integer"},"retry_policy":{"max_attempts":null}},{"name":"get","ty":"Shared",'
    '"public":true,"input_description":"none","output_description":"JSON integer","output_json_schema":'
    '{"type":"integer"},"retry_policy":{"max_attempts":null}}],"deployment_id":"DP","revision":1,"public":true,'
    '"idempotency_retention":"1d","journal_retention":"1d","inactivity_timeout":"1m","abort_timeout":"10m",'
    '"enable_lazy_state":false,"retry_policy":{"initial_interval":"500ms","exponentiation_factor":2.0,'
    '"max_attempts":70,"max_interval":"1m","on_max_attempts":"Pause"}}'
)
SIGNUP_CONFIRM = (
    '{"name":"confirm","ty":"Shared","public":true,"input_description":"JSON string","output_description":"none",'
    '"input_json_schema":{"type":"string"},"retry_policy":{"max_attempts":null}}'
)


@pytest.fixture
async def deployment(admin: Client, sdk_service: SdkService) -> dict[str, Any]:
    response = await admin.post("/deployments", json={"uri": sdk_service.uri})
    assert response.status == 201
    body: dict[str, Any] = await response.json()
    return body


async def test_services_get_matches_real_server_bytes(admin: Client, deployment: dict[str, Any]) -> None:
    response = await admin.get("/services/Counter")
    assert response.status == 200
    assert response.headers["vary"] == "accept-encoding"
    assert await response.text() == COUNTER.replace("DP", deployment["id"])


async def test_services_workflow_has_completion_retention(admin: Client, deployment: dict[str, Any]) -> None:
    signup = await (await admin.get("/v4/services/Signup")).json()
    assert signup["workflow_completion_retention"] == "1d"
    assert list(signup)[:10] == [
        "name",
        "ty",
        "handlers",
        "deployment_id",
        "revision",
        "public",
        "idempotency_retention",
        "workflow_completion_retention",
        "journal_retention",
        "inactivity_timeout",
    ]
    response = await admin.get("/services/Signup/handlers/confirm")
    assert await response.text() == SIGNUP_CONFIRM


async def test_services_list_and_handlers(admin: Client, deployment: dict[str, Any]) -> None:
    services = await (await admin.get("/services")).json()
    assert {s["name"] for s in services["services"]} == {"Greeter", "Counter", "Signup", "Sleeper", "Caller"}
    handlers = await (await admin.get("/services/Counter/handlers")).json()
    counter = json.loads(COUNTER.replace("DP", deployment["id"]))
    assert handlers == {"handlers": counter["handlers"]}


async def test_services_unknown_names(admin: Client, deployment: dict[str, Any]) -> None:
    response = await admin.get("/services/Nope")
    assert response.status == 404
    assert (
        await response.text()
        == '{"message":"The requested service \'Nope\' does not exist","restate_code":null}'
    )
    response = await admin.get("/services/Counter/handlers/nope")
    assert response.status == 404
    assert (await response.json())[
        "message"
    ] == "The requested handler 'nope' on service 'Counter' does not exist"


async def test_services_patch_overrides_options(admin: Client, deployment: dict[str, Any]) -> None:
    response = await admin.patch(
        "/services/Greeter", json={"public": False, "idempotency_retention": "2h", "abort_timeout": "PT30S"}
    )
    assert response.status == 200
    body = await response.json()
    assert (body["public"], body["idempotency_retention"], body["abort_timeout"]) == (False, "2h", "30s")
    assert all(h["public"] is False for h in body["handlers"])
    again = await (await admin.get("/services/Greeter")).json()
    assert again == body


async def test_services_patch_state_history_retention(admin: Client, deployment: dict[str, Any]) -> None:
    assert "state_history_retention" not in await (await admin.get("/services/Counter")).json()  # default
    response = await admin.patch("/services/Counter", json={"state_history_retention": "0s"})
    assert response.status == 200
    body = await response.json()
    assert body["state_history_retention"] == "0s"
    assert list(body).index("state_history_retention") == list(body).index("journal_retention") + 1
    patched = await (await admin.patch("/services/Counter", json={"state_history_retention": "2d"})).json()
    assert patched["state_history_retention"] == "2d"
    response = await admin.patch("/services/Greeter", json={"state_history_retention": "1h"})
    assert response.status == 400
    assert "has no state" in (await response.json())["message"]
    response = await admin.patch("/services/Counter", json={"state_history_retention": 0})
    assert response.status == 422


async def test_services_patch_errors(admin: Client, deployment: dict[str, Any]) -> None:
    response = await admin.patch("/services/Greeter", json={"workflow_completion_retention": "1h"})
    assert response.status == 400
    assert (await response.json())[
        "message"
    ] == "modifying retention time for service type Service is unsupported"
    response = await admin.patch("/services/Nope", json={"public": True})
    assert response.status == 404
    response = await admin.patch("/services/Greeter", json={"abort_timeout": "soon"})
    assert response.status == 422
    response = await admin.patch("/services/Greeter", data=b"{}")
    assert response.status == 415


async def test_services_openapi_describes_the_17_ingress_paths(
    admin: Client, deployment: dict[str, Any]
) -> None:
    doc = await (await admin.get("/services/Counter/openapi")).json()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {
        f"/restate/{verb}/Counter/{{key}}/{handler}"
        for verb in ("call", "send")
        for handler in ("add", "get")
    } | {
        f"/restate/invocation/Counter/{{key}}/{handler}/{{idempotencyKey}}/{action}"
        for handler in ("add", "get")
        for action in ("attach", "output")
    }
    add = doc["paths"]["/restate/call/Counter/{key}/add"]["post"]
    assert add["operationId"] == "add"
    assert add["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/addRequest"
    }
    assert doc["components"]["schemas"]["addRequest"] == {"type": "integer"}
    assert add["parameters"] == [
        {"$ref": "#/components/parameters/key"},
        {"$ref": "#/components/parameters/idempotencyKeyHeader"},
    ]
    send = doc["paths"]["/restate/send/Counter/{key}/add"]["post"]
    assert send["responses"]["202"] == {"$ref": "#/components/responses/Send"}
    assert set(doc["components"]["parameters"]) == {
        "delay",
        "key",
        "idempotencyKeyHeader",
        "idempotencyKeyPath",
    }
    assert "RestateError" in doc["components"]["schemas"]
    assert doc["servers"][0]["url"].endswith("/")
    assert (await admin.get("/services/Nope/openapi")).status == 404
