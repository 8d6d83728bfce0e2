"""Bad requests get upstream's status and message, and the server keeps serving."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from harness import Sdk, Server, free_port


def _ok(server: Server) -> None:
    assert server.call("Greeter/greet", "still-up").json() == "Hello still-up!"


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("Nope/greet", 404, "service 'Nope' not found, make sure to register the service before calling it."),
        (
            "Greeter/nope",
            404,
            "the service 'Greeter' exists, but the handler 'nope' was not found, check that the "
            "handler exists in the latest registered service version.",
        ),
        (
            "Counter/add",
            400,
            "bad path, expected either /:service-name/:handler or /:object-name/:object-key/:handler",
        ),
        (
            "Greeter/greet/extra",
            400,
            "bad path, expected either /:service-name/:handler or /:object-name/:object-key/:handler",
        ),
        (
            "Greeter/greet?delay=1s",
            400,
            "cannot use the delay query parameter with calls. The delay is supported only with sends",
        ),
    ],
    ids=["unknown-service", "unknown-handler", "object-without-key", "trailing-segment", "delay-on-call"],
)
def test_bad_paths(deployed: Server, path: str, status: int, message: str) -> None:
    resp = deployed.call(path, "x")
    assert resp.status_code == status
    assert resp.json() == {"code": status, "message": message, "source": "ingress"}
    assert resp.headers["x-restate-error-source"] == "ingress"
    _ok(deployed)


def test_wrong_method_and_content_type(deployed: Server) -> None:
    resp = httpx.put(f"{deployed.ingress}/Greeter/greet", json="x")
    assert resp.status_code == 405
    assert resp.json()["message"] == "method not allowed"
    resp = httpx.post(
        f"{deployed.ingress}/Greeter/greet", content=b"hello", headers={"content-type": "text/plain"}
    )
    assert resp.status_code == 400
    assert (
        resp.json()["message"] == "input validation error: Content-type 'text/plain' does not match "
        "'application/json'"
    )
    _ok(deployed)


def test_non_json_body_to_json_handler_fails_terminally(deployed: Server) -> None:
    resp = httpx.post(
        f"{deployed.ingress}/Greeter/greet",
        content=b"{not json",
        headers={"content-type": "application/json"},
        timeout=30,
    )
    # the ingress passes the bytes through; the SDK rejects them with a terminal error
    assert resp.status_code == 500
    assert resp.json()["source"] == "invocation"
    assert resp.json()["message"].startswith("Unable to parse an input argument")
    _ok(deployed)


def test_register_unreachable_uri(server: Server, sdk: Sdk) -> None:
    port = free_port()  # nothing listens there
    resp = httpx.post(f"{server.admin}/deployments", json={"uri": f"http://127.0.0.1:{port}"}, timeout=60)
    assert resp.status_code == 500
    body = resp.json()
    assert body["restate_code"] == "META0003"
    assert httpx.get(f"{server.admin}/deployments").json() == {"deployments": []}
    server.register(sdk.uri)
    _ok(server)


class _Html(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>hello</html>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_register_non_sdk_http_server(server: Server, sdk: Sdk) -> None:
    httpd = HTTPServer(("127.0.0.1", 0), _Html)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{httpd.server_address[1]}"
        for use_http_11 in (False, True):
            resp = httpx.post(
                f"{server.admin}/deployments", json={"uri": uri, "use_http_11": use_http_11}, timeout=60
            )
            assert resp.status_code >= 400
            assert resp.json()["restate_code"] in ("META0003", "META0013", "META0014")
        assert httpx.get(f"{server.admin}/deployments").json() == {"deployments": []}
    finally:
        httpd.shutdown()
    server.register(sdk.uri)
    _ok(server)

