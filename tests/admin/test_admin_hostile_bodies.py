"""Bodies built to break a parser get a 4xx in upstream's form, never a 500."""

from __future__ import annotations

import pytest
from admin_fixtures import Client

NESTED = b"[" * 100_000


@pytest.mark.parametrize("path", ["/deployments", "/v4/deployments"], ids=["unversioned", "v4"])
async def test_deeply_nested_json_is_a_400(admin: Client, path: str) -> None:
    response = await admin.post(path, data=NESTED, headers={"content-type": "application/json"})
    assert response.status == 400
    assert await response.text() == "Failed to parse the request body as JSON: recursion limit exceeded"


async def test_body_past_the_admin_limit_is_a_413(admin: Client) -> None:
    body = b'{"uri": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = await admin.post("/deployments", data=body, headers={"content-type": "application/json"})
    assert response.status == 413
    assert await response.json() == {
        "message": "Failed to buffer the request body: length limit exceeded",
        "restate_code": None,
    }


@pytest.mark.parametrize(
    "uri",
    ["http://[::1", "http://127.0.0.1:9080/a\x00b", "http://127.0.0.1:9080/a b", "http://h:port"],
    ids=["unclosed-ipv6", "nul", "space", "bad-port"],
)
async def test_a_uri_that_http_would_not_parse_is_a_422(admin: Client, uri: str) -> None:
    response = await admin.post("/deployments", json={"uri": uri})
    assert response.status == 422
    assert await response.text() == (
        "Failed to deserialize the JSON body into the target type: "
        "data did not match any variant of untagged enum RegisterDeploymentRequest"
    )
