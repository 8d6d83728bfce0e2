"""The per-service OpenAPI contract, built from schema records (pure)."""

from __future__ import annotations

from restate_server.schema import model, openapi


def _handler(name: str, ty: model.HandlerType | None = None, **fields: object) -> model.Handler:
    return model.Handler(name=name, ty=ty, **fields)  # type: ignore[arg-type]


def test_workflow_contract_has_run_attach_and_output_but_no_idempotency() -> None:
    service = model.Service(
        name="Signup",
        ty=model.ServiceType.WORKFLOW,
        deployment_id="dp_x",
        handlers={
            "run": _handler(
                "run",
                model.HandlerType.WORKFLOW,
                input=model.InputRules(content_type="application/json", json_schema={"$ref": "#/$defs/E"}),
                output=model.OutputRules(content_type="application/json", json_schema={"type": "string"}),
            ),
            "status": _handler("status", model.HandlerType.SHARED),
            "secret": _handler("secret", model.HandlerType.SHARED, public=False),
        },
    )
    doc = openapi.service_openapi(service, "http://127.0.0.1:8080/")
    assert set(doc["paths"]) == {
        "/restate/call/Signup/{key}/run",
        "/restate/send/Signup/{key}/run",
        "/restate/call/Signup/{key}/status",
        "/restate/send/Signup/{key}/status",
        "/restate/workflow/Signup/{key}/attach",
        "/restate/workflow/Signup/{key}/output",
    }
    output = doc["paths"]["/restate/workflow/Signup/{key}/output"]["get"]
    assert output["deprecated"] is True
    assert output["parameters"] == [{"$ref": "#/components/parameters/key"}]
    assert set(output["responses"]) == {"200", "404", "470", "default"}
    # a local reference inside the handler's schema now points into its component
    assert doc["components"]["schemas"]["runRequest"] == {"$ref": "#/components/schemas/runRequest/$defs/E"}
    status = doc["paths"]["/restate/call/Signup/{key}/status"]["post"]
    assert status["responses"]["200"] == {"description": "Empty"}
    assert "requestBody" in status  # `*/*` input: a body of any type, no schema
    assert status["requestBody"] == {"content": {"*/*": {}}, "required": False}
    assert list(doc["components"]["schemas"])[-1] == "RestateError"  # the service's schemas come first
