"""The optimistic-concurrency version of an object's state, as `restate kv edit` computes it."""

from __future__ import annotations

import base64
import hashlib


def state_version(entries: list[tuple[bytes, bytes]]) -> str:
    """SHA-256 over the sorted entries, URL-safe base64 without padding (upstream's scheme)."""
    digest = hashlib.sha256()
    for index, (key, value) in enumerate(sorted(entries)):
        digest.update(index.to_bytes(8, "big") + b"\x01" + key + b"\x02" + value + b"\x03")
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
