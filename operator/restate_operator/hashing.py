"""Stable hashes: the per-version template hash of a RestateDeployment and the config hash of a cluster.

The template hash names a version (``<rsd>-<hash>``) exactly like upstream: FNV-1a 64 over the JSON of
the pod template plus the registration inputs, six bytes of it spelled in Kubernetes' "safe" alphabet
(no vowels, no digits 0-3 that read like letters). Same input, same name, across operator restarts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = 0xFFFFFFFFFFFFFFFF
# Kubernetes' rand.SafeEncodeString alphabet: vowels and look-alike digits are left out, so a hash never
# spells a word.
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def fnv1a64(data: bytes) -> int:
    """The 64-bit FNV-1a hash of ``data``."""
    value = _FNV_OFFSET
    for byte in data:
        value ^= byte
        value = (value * _FNV_PRIME) & _MASK64
    return value


def safe_encode(value: bytes) -> str:
    """Spell each byte with Kubernetes' safe alphabet (one character per byte)."""
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in value)


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no spaces: the same object always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def template_hash(
    template: Mapping[str, Any],
    *,
    register_target: str,
    service_path: str,
    use_http11: bool,
    collision_count: int,
) -> str:
    """The version hash of a RestateDeployment: changes whenever the pods or their registration would."""
    data = bytearray(canonical_json(template))
    data += register_target.encode()
    data += service_path.encode()
    if use_http11:
        data += b"use_http_11"
    if collision_count:
        data += str(collision_count).encode()
    digest = fnv1a64(bytes(data)).to_bytes(8, "big")
    return safe_encode(digest[:4]) + safe_encode(digest[4:6])


def config_hash(*parts: str) -> str:
    """Short digest of rendered configuration, stamped on the pod template so a change rolls the pods."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]
