"""The 1.7 ingress surface on the real server: new paths, lookup, CORS, h2c, headers, codes, path rules."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import httpx
import pytest
from harness import Sdk, Server
from restate_server.ids import InvocationId

CURL = shutil.which("curl")


@pytest.fixture
def deployed(server: Server, sdk: Sdk) -> Server:
    server.register(sdk.uri)
    return server


def test_restate_call_send_attach_and_output(deployed: Server) -> None:
    called = httpx.post(f"{deployed.ingress}/restate/call/Greeter/greet", json="v17", timeout=30)
    assert (called.status_code, called.json()) == (200, "Hello v17!")
    sent = httpx.post(f"{deployed.ingress}/restate/send/Counter/c17/add", json=2, timeout=30)
    assert sent.status_code == 202
    inv = sent.json()["invocationId"]
    assert sent.headers["x-restate-id"] == inv
    attached = httpx.get(f"{deployed.ingress}/restate/attach/{inv}", timeout=30)
    assert (attached.status_code, attached.json()) == (200, 2)
    output = httpx.get(f"{deployed.ingress}/restate/output/{inv}", timeout=30)
    assert (output.status_code, output.json()) == (200, 2)
    by_body = httpx.post(
        f"{deployed.ingress}/restate/output", json={"target": "invocation", "invocationId": inv}, timeout=30
    )
    assert (by_body.status_code, by_body.json()) == (200, 2)
    bad_id = httpx.get(f"{deployed.ingress}/restate/attach/inv_nope", timeout=30)
    assert bad_id.status_code == 400
    assert bad_id.json()["message"].startswith("bad invocation id 'inv_nope': ")
    wrong_method = httpx.get(f"{deployed.ingress}/restate/lookup", timeout=30)
    assert wrong_method.status_code == 405


def test_lookup_finds_idempotent_invocations_and_workflows(deployed: Server) -> None:
    called = deployed.call("Greeter/greet", "idem", headers={"idempotency-key": "k-lookup"})
    looked_up = httpx.post(
        f"{deployed.ingress}/restate/lookup",
        json={
            "target": "idempotentInvocation",
            "service": "Greeter",
            "handler": "greet",
            "idempotencyKey": "k-lookup",
        },
        timeout=30,
    )
    assert looked_up.status_code == 200
    assert looked_up.json() == {"invocationId": called.headers["x-restate-id"]}
    workflow = httpx.post(
        f"{deployed.ingress}/restate/lookup",
        json={"target": "workflow", "workflowName": "Signup", "workflowKey": "u1"},
        timeout=30,
    )
    assert workflow.json() == {"invocationId": str(InvocationId.for_workflow("Signup", "u1"))}
    bad = httpx.post(f"{deployed.ingress}/restate/lookup", json={"target": "nope"}, timeout=30)
    assert bad.status_code == 500
    assert bad.json()["message"].startswith("cannot read body: invalid lookup body: ")


def test_cors_preflight_and_headers(deployed: Server) -> None:
    preflight = httpx.options(
        f"{deployed.ingress}/Greeter/greet",
        headers={"origin": "http://ui", "access-control-request-method": "POST"},
        timeout=30,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://ui"
    assert preflight.headers["access-control-allow-methods"] == "POST"
    called = httpx.post(
        f"{deployed.ingress}/Greeter/greet", json="cors", headers={"origin": "http://ui"}, timeout=30
    )
    assert called.headers["access-control-allow-origin"] == "http://ui"
    assert called.headers["access-control-allow-credentials"] == "true"


def test_h2c_on_ingress_and_admin(deployed: Server) -> None:
    with httpx.Client(http2=True, http1=False, timeout=30) as client:
        called = client.post(f"{deployed.ingress}/Greeter/greet", json="h2")
        assert (called.http_version, called.json()) == ("HTTP/2", "Hello h2!")
        version = client.get(f"{deployed.admin}/version")
        assert (version.http_version, version.json()["max_admin_api_version"]) == ("HTTP/2", 4)
        rows = client.post(
            f"{deployed.admin}/query",
            json={"query": "SELECT count(*) AS n FROM sys_service"},
            headers={"accept": "application/json"},
        )
        assert rows.http_version == "HTTP/2"
        assert rows.json()["rows"][0]["n"] > 0
        for response in (called, version, rows):
            assert "server" not in response.headers
    if CURL is not None:  # Debian's curl speaks h2c too; the check above does not depend on it
        done = subprocess.run(
            [
                CURL,
                "-sS",
                "--http2-prior-knowledge",
                "-H",
                "content-type: application/json",
                "--data",
                '"curl"',
                f"{deployed.ingress}/Greeter/greet",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.stdout == '"Hello curl!"', done.stderr


def test_handlers_get_the_ingress_path(deployed: Server) -> None:
    resp = deployed.call("Greeter/header?x=1&y=%20", "x-restate-ingress-path")
    assert resp.json() == "/Greeter/header?x=1&y=%20"


@pytest.mark.parametrize(("code", "status"), [(409, 409), (600, 600), (999, 999), (1000, 500)], ids=str)
def test_terminal_error_codes_become_statuses_as_upstream(deployed: Server, code: int, status: int) -> None:
    resp = deployed.call("Greeter/fail_with", code)
    assert resp.status_code == status
    assert resp.json() == {"code": code, "message": f"failed with {code}", "source": "invocation"}


def _raw_http1(server: Server, target: bytes, body: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", server.ingress_port), timeout=30) as sock:
        sock.sendall(
            b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), payload


def test_path_handling_as_upstream(deployed: Server) -> None:
    status, body = _raw_http1(deployed, "/Counter/caf\xe9/add".encode(), b"3")  # raw UTF-8, as curl sends it
    assert (status, body) == (200, b"3")
    assert deployed.call("Counter/caf%C3%A9/get").json() == 3  # the same key
    encoded_name = deployed.call("Gr%65eter/greet", "x")
    assert encoded_name.status_code == 404
    assert encoded_name.json()["message"].startswith("service 'Gr%65eter' not found")
    encoded_handler = deployed.call("Greeter/gr%65et", "x")
    assert encoded_handler.status_code == 404
    bad_key = deployed.call("Counter/%FF/add", 1)
    assert bad_key.status_code == 400
    assert bad_key.json()["message"].startswith("bad path, cannot decode key: FromUtf8Error")
    status, body = _raw_http1(deployed, b"/Counter/\xff/add", b"1")
    assert status == 400
    assert json.loads(body)["message"].startswith("bad path, cannot decode key")


@pytest.mark.parametrize(
    "uri", ["http://[::1", "http://127.0.0.1:1/\x00", "http://127.0.0.1:1/a b"], ids=["ipv6", "nul", "space"]
)
def test_unparsable_deployment_uris_are_4xx(server: Server, uri: str) -> None:
    resp = httpx.post(f"{server.admin}/deployments", json={"uri": uri}, timeout=30)
    assert resp.status_code == 422
    assert "server" not in resp.headers


def test_service_openapi_describes_paths_that_answer(deployed: Server) -> None:
    doc = httpx.get(f"{deployed.admin}/services/Counter/openapi", timeout=30).json()
    server_url = doc["servers"][0]["url"]
    assert server_url == f"{deployed.ingress}/"
    call = "/restate/call/Counter/{key}/add"
    assert doc["paths"][call]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/addRequest"
    }
    answered = httpx.post(server_url.rstrip("/") + call.replace("{key}", "oa"), json=4, timeout=30)
    assert answered.json() == 4
    admin_doc = httpx.get(f"{deployed.admin}/openapi", timeout=30).json()
    assert "ModifyServiceStateRequest" in admin_doc["components"]["schemas"]
    assert admin_doc["paths"]["/services/{service}/state"]["post"]["operationId"] == "modify_service_state"
