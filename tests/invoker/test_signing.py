"""Request identity v1: the headers every request to a deployment carries, and loading the key."""

from __future__ import annotations

from pathlib import Path

import base58
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from restate_server.invoker.signing import JWT_HEADER, SCHEME_HEADER, RequestSigner, SigningKeyError

NOW = 1_700_000_000


def _pem(key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_headers_are_a_short_lived_token_for_the_path() -> None:
    key = Ed25519PrivateKey.generate()
    signer = RequestSigner(key, clock=lambda: NOW + 0.7)
    headers = signer.headers("/invoke/Obj/run", "k")
    assert headers[SCHEME_HEADER] == "v1"
    token = headers[JWT_HEADER]
    assert jwt.get_unverified_header(token)["kid"] == signer.key_id
    claims = jwt.decode(
        token,
        key.public_key(),
        algorithms=["EdDSA"],
        audience="/invoke/Obj/run",
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert claims == {"aud": "/invoke/Obj/run", "iat": NOW, "nbf": NOW - 60, "exp": NOW + 60, "sub": "k"}
    assert "sub" not in jwt.decode(
        signer.headers("/discover")[JWT_HEADER], options={"verify_signature": False}
    )


def test_key_id_is_the_base58_public_key() -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert RequestSigner(key).key_id == "publickeyv1_" + base58.b58encode(raw).decode()


def test_load_from_pem_file(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "key.pem"
    path.write_bytes(_pem(key))
    assert RequestSigner.from_pem_file(path).key_id == RequestSigner(key).key_id


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda: _pem(Ed25519PrivateKey.generate()) * 2, "expected exactly one PEM block, found 2"),
        (lambda: _pem(ec.generate_private_key(ec.SECP256R1())), "not an Ed25519 key"),
        (lambda: b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n", "cannot read"),
    ],
    ids=["two-keys", "not-ed25519", "garbage"],
)
def test_unusable_key_files(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(content())  # type: ignore[operator]
    with pytest.raises(SigningKeyError, match=message):
        RequestSigner.from_pem_file(path)
