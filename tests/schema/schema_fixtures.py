"""Fixtures for schema tests: manifests as the real SDK sends them, and a fake discovery client."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import pytest
from restate_server.protocol import discovery

V4 = "application/vnd.restate.endpointmanifest.v4+json"

_JSON_STRING = {
    "input": {"required": False, "contentType": "application/json", "jsonSchema": {"type": "string"}},
    "output": {
        "contentType": "application/json",
        "setContentTypeIfEmpty": False,
        "jsonSchema": {"type": "string"},
    },
}
_JSON_INT = {
    "input": {"required": False, "contentType": "application/json", "jsonSchema": {"type": "integer"}},
    "output": {
        "contentType": "application/json",
        "setContentTypeIfEmpty": False,
        "jsonSchema": {"type": "integer"},
    },
}

# What restate-sdk-python 1.3.0 answers for tests/services/app.py (captured from the real SDK).
MANIFEST: dict[str, Any] = {
    "protocolMode": "BIDI_STREAM",
    "minProtocolVersion": 5,
    "maxProtocolVersion": 7,
    "services": [
        {
            "name": "Greeter",
            "ty": "SERVICE",
            "handlers": [{"name": "greet", **_JSON_STRING}, {"name": "fail", **_JSON_STRING}],
        },
        {
            "name": "Counter",
            "ty": "VIRTUAL_OBJECT",
            "handlers": [
                {"name": "add", "ty": "EXCLUSIVE", **_JSON_INT},
                {"name": "get", "ty": "SHARED", "input": {}, "output": _JSON_INT["output"]},
            ],
        },
        {
            "name": "Signup",
            "ty": "WORKFLOW",
            "handlers": [
                {"name": "run", "ty": "WORKFLOW", **_JSON_STRING},
                {
                    "name": "confirm",
                    "ty": "SHARED",
                    "input": _JSON_STRING["input"],
                    "output": {"setContentTypeIfEmpty": False},
                },
            ],
        },
    ],
}


def manifest(**changes: Any) -> dict[str, Any]:
    """A deep copy of :data:`MANIFEST` with top-level keys replaced."""
    doc = copy.deepcopy(MANIFEST)
    doc.update(changes)
    return doc


def endpoint(
    doc: Mapping[str, Any] | None = None, *, http_version: str = discovery.HTTP_2
) -> discovery.DiscoveredEndpoint:
    """Parse a manifest as discovery would."""
    body = json.dumps(doc if doc is not None else MANIFEST).encode()
    return discovery.parse_manifest(
        body, content_type=V4, http_version=http_version, x_restate_server="restate-sdk-python/1.3.0"
    )


class FakeDiscovery:
    """A discovery client answering from a table of URI -> manifest; records its calls."""

    def __init__(self) -> None:
        self.manifests: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    async def __call__(
        self, uri: str, *, use_http_11: bool, additional_headers: Mapping[str, str]
    ) -> discovery.DiscoveredEndpoint:
        self.calls.append(uri)
        return endpoint(
            self.manifests[uri], http_version=discovery.HTTP_11 if use_http_11 else discovery.HTTP_2
        )


@pytest.fixture
def fake_discovery() -> FakeDiscovery:
    return FakeDiscovery()
