"""Rendering schema records as admin API JSON: descriptions, durations, RT0021 notes."""

from __future__ import annotations

import sys
from pathlib import Path

from restate_server.admin import model as admin_model
from restate_server.config import Config
from restate_server.schema.build import build_service
from restate_server.schema.model import InputRules, OutputRules, ProtocolType

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "schema"))

from schema_fixtures import endpoint, manifest


def test_admin_model_reports_rt0021_for_request_response() -> None:
    from restate_server.admin import model as admin_model

    doc = manifest()
    doc["services"][0]["inactivityTimeout"] = 90_000
    svc = build_service(endpoint(doc).services[0], deployment_id="dp_x", revision=1)
    rendered = admin_model.service_metadata(svc, ProtocolType.REQUEST_RESPONSE, Config())
    assert rendered["inactivity_timeout"] == "0s"
    assert rendered["info"] == [
        {
            "code": "RT0021",
            "message": "The configured inactivity_timeout 1m 30s will not be applied because the service is "
            "exposed in Request/Response mode.",
        }
    ]
    assert "info" not in admin_model.service_metadata(svc, ProtocolType.BIDI_STREAM, Config())


def test_admin_model_descriptions() -> None:
    assert admin_model.input_description(InputRules()) == "*/*"
    assert admin_model.input_description(InputRules(content_type=None)) == "none"
    assert (
        admin_model.input_description(InputRules(required=True, content_type="application/*"))
        == "application/*"
    )
    titled = InputRules(content_type="application/json", json_schema={"title": "Person", "type": "object"})
    assert admin_model.input_description(titled) == "JSON 'Person'"
    assert admin_model.output_description(OutputRules(content_type=None)) == "none"
    assert (
        admin_model.output_description(OutputRules(content_type="text/plain", set_content_type_if_empty=True))
        == "optional text/plain"
    )


def test_admin_model_timestamp() -> None:
    assert admin_model.timestamp(1795301050125) == "2026-11-21T22:44:10.125000000Z"
    assert admin_model.timestamp(1795301050000) == "2026-11-21T22:44:10Z"
