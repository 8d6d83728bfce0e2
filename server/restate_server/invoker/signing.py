"""Request identity v1: signing every request to a deployment with the node's Ed25519 key.

SDKs configured with ``identity_keys=["publickeyv1_…"]`` reject requests that do not carry a valid
token, so discovery and every invocation attempt add the headers built here. The token is a short-lived
EdDSA JWT whose audience is the request path, which stops a captured token from being replayed
against another handler.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import base58

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# jwt and cryptography (about 0.1 s to import) are loaded when a key is configured, not at start-up.

SCHEME_HEADER = "x-restate-signature-scheme"
JWT_HEADER = "x-restate-jwt-v1"
KEY_ID_PREFIX = "publickeyv1_"
LEEWAY_SECONDS = 60  # upstream's default: tolerates that much clock skew between server and SDK


class SigningKeyError(ValueError):
    """The configured private key file is unusable."""


class RequestSigner:
    """Mints ``x-restate-jwt-v1`` tokens with one Ed25519 private key."""

    def __init__(self, key: Ed25519PrivateKey, *, clock: Callable[[], float] = time.time) -> None:
        from cryptography.hazmat.primitives import serialization

        self._key = key
        self._clock = clock
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = KEY_ID_PREFIX + base58.b58encode(raw).decode()

    @classmethod
    def from_pem_file(cls, path: str | Path) -> RequestSigner:
        """Load the key from a PEM file that must hold exactly one PKCS#8 Ed25519 private key."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        data = Path(path).read_bytes()
        blocks = data.count(b"-----BEGIN ")
        if blocks != 1:
            raise SigningKeyError(f"{path}: expected exactly one PEM block, found {blocks}")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as e:
            raise SigningKeyError(f"{path}: cannot read the private key: {e}") from e
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{path}: the private key is not an Ed25519 key")
        return cls(key)

    def headers(self, path: str, service_key: str | None = None) -> dict[str, str]:
        """Signature headers for a request to ``path`` (``/discover``, ``/invoke/S/h``)."""
        now = int(self._clock())
        claims: dict[str, object] = {
            "aud": path,
            "iat": now,
            "nbf": now - LEEWAY_SECONDS,
            "exp": now + LEEWAY_SECONDS,
        }
        if service_key is not None:
            claims["sub"] = service_key
        import jwt

        token = jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.key_id})
        return {SCHEME_HEADER: "v1", JWT_HEADER: token}
