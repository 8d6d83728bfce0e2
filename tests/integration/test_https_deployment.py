"""Deployments behind ``https://``: discovered and called over HTTP/1.1 with their certificates verified.

The services run under hypercorn with a certificate for 127.0.0.1 signed by a CA made here; the server
trusts that CA through ``SSL_CERT_FILE`` (as it would trust the system's CA store), or not at all.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from harness import Sdk, Server, wait_until
from ports import free_port


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    signer: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(signer, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def https_sdk(tmp_path: Path) -> Iterator[Sdk]:
    """The integration services over TLS, with a certificate for 127.0.0.1 from a CA made here."""
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test CA", ca_key, None, ca_key)
    (tmp_path / "ca.pem").write_bytes(_pem(ca))
    (tmp_path / "cert.pem").write_bytes(_pem(_certificate("127.0.0.1", leaf_key, ca, ca_key)))
    (tmp_path / "key.pem").write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "side-effects.txt").touch()
    env = {
        "SERVE_CERTFILE": str(tmp_path / "cert.pem"),
        "SERVE_KEYFILE": str(tmp_path / "key.pem"),
        "SIDE_EFFECTS_FILE": str(tmp_path / "side-effects.txt"),
    }
    service = Sdk(port=free_port(), env=env, log_path=tmp_path / "sdk.log", ca=tmp_path / "ca.pem")
    service.start()
    yield service
    service.stop()


def test_a_deployment_behind_https_is_called_only_while_its_certificate_is_trusted(
    tmp_path: Path, https_sdk: Sdk
) -> None:
    assert https_sdk.ca is not None
    trusting = {"SSL_CERT_FILE": str(https_sdk.ca)}  # as if the CA were in the system's store
    server = Server(base_dir=tmp_path / "data", log_path=tmp_path / "server.log", env=trusting)
    server.start()
    try:
        server.register(https_sdk.uri, use_http_11=True)
        answer = server.call("Greeter/greet", "over tls")
        assert answer.status_code == 200, answer.text
        assert answer.json() == "Hello over tls!"

        server.stop()  # the same deployment, now with only the system's CA store to trust
        server.env = {}
        server.start()
        sent = server.call("Greeter/greet/send", "untrusted")
        assert sent.status_code == 202, sent.text
        query = "SELECT last_failure FROM sys_invocation WHERE status = 'backing-off'"
        failures = wait_until(lambda: [row["last_failure"] for row in server.query(query)], timeout=30)
        assert "certificate verify failed" in failures[0], failures
    finally:
        server.stop()
