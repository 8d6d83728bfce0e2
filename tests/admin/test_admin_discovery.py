"""Discovery failures as the admin API reports them, and request signing against the real SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest
from admin_fixtures import make_admin
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from restate_server.admin.discovery import ClientError, discover
from restate_server.invoker.signing import RequestSigner, SigningKeyError
from sdk_fixtures import SdkServiceFactory, free_port

Client = TestClient  # type: ignore[type-arg]


async def _html(request: web.Request) -> web.Response:
    return web.Response(text="<html><body>hello</body></html>", content_type="text/html")


@pytest.fixture
async def http1_server() -> AsyncIterator[str]:
    """A plain aiohttp (HTTP/1.1-only) server: HTML on /discover, 404 elsewhere."""
    app = web.Application()
    app.router.add_get("/discover", _html)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


async def post(admin: Client, **body: object) -> tuple[int, dict[str, object]]:
    response = await admin.post("/deployments", json=body)
    return response.status, await response.json()


async def test_discovery_unreachable_is_meta0003(admin: Client) -> None:
    port = free_port()
    status, body = await post(admin, uri=f"http://127.0.0.1:{port}")
    assert status == 500
    assert body["restate_code"] == "META0003"
    assert str(body["message"]).startswith(
        f"[META0003] error when calling 'http://127.0.0.1:{port}/discover': unable to reach the remote endpoint."
    )


async def test_discovery_h2c_against_http1_server_is_meta0014(admin: Client, http1_server: str) -> None:
    status, body = await post(admin, uri=http1_server)
    assert status == 500
    assert body["restate_code"] == "META0014"
    assert "consider discovery with --use-http1.1" in str(body["message"])


async def test_discovery_html_answer_is_meta0013(admin: Client, http1_server: str) -> None:
    status, body = await post(admin, uri=http1_server, use_http_11=True)
    assert status == 500
    assert body["restate_code"] == "META0013"
    assert str(body["message"]).startswith(
        "[META0013] received a bad response from the SDK: Bad content type header"
    )


async def test_discovery_404_is_meta0003_with_path_hint(admin: Client, http1_server: str) -> None:
    status, body = await post(admin, uri=http1_server + "/wrong/path", use_http_11=True)
    assert status == 500
    assert body["restate_code"] == "META0003"
    assert "got status code '404'. Make sure the provided URI has the correct path" in str(body["message"])


def _write_key(path: Path) -> Path:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def test_signer_key_id_and_claims(tmp_path: Path) -> None:
    signer = RequestSigner.from_pem_file(_write_key(tmp_path / "key.pem"))
    assert signer.key_id.startswith("publickeyv1_")
    headers = signer.headers("/invoke/Counter/add", service_key="k1")
    assert headers["x-restate-signature-scheme"] == "v1"
    claims = jwt.decode(headers["x-restate-jwt-v1"], options={"verify_signature": False})
    assert claims["aud"] == "/invoke/Counter/add"
    assert claims["sub"] == "k1"
    assert claims["exp"] - claims["iat"] == 60
    assert claims["iat"] - claims["nbf"] == 60
    assert jwt.get_unverified_header(headers["x-restate-jwt-v1"])["kid"] == signer.key_id


def test_signer_refuses_two_keys(tmp_path: Path) -> None:
    one = _write_key(tmp_path / "a.pem").read_bytes()
    (tmp_path / "two.pem").write_bytes(one + one)
    with pytest.raises(SigningKeyError, match="exactly one"):
        RequestSigner.from_pem_file(tmp_path / "two.pem")


async def test_discovery_signed_requests_accepted_by_sdk_with_identity_keys(
    tmp_path: Path, sdk_service_factory: SdkServiceFactory
) -> None:
    signer = RequestSigner.from_pem_file(_write_key(tmp_path / "key.pem"))
    service = sdk_service_factory(identity_keys=[signer.key_id])

    unsigned = await make_admin()
    try:
        status, body = await post(unsigned, uri=service.uri)
        assert status == 500
        assert body["restate_code"] == "META0003"
        assert "got status code '401 Unauthorized'" in str(body["message"])
    finally:
        await unsigned.close()

    signed = await make_admin(signer)
    try:
        status, _ = await post(signed, uri=service.uri)
        assert status == 201
    finally:
        await signed.close()


async def test_discovery_hanging_endpoint_times_out_once() -> None:
    """A silent endpoint costs one attempt timeout, not one per retry."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    try:
        with pytest.raises(ClientError) as info:
            await discover(f"http://127.0.0.1:{port}", attempt_timeout=0.3, retry_delays=(0.05, 0.05))
    finally:
        server.close()
    assert info.value.code == "META0003"
    assert "timed out" in info.value.message
    assert time.monotonic() - started < 2.0
