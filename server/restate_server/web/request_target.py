"""Request targets as clients send them: raw UTF-8 in a path is percent-encoded before parsing.

Upstream's HTTP stack (hyper, `http`) accepts bytes above 0x7F in a request target as sent (curl
sends `/Counter/é/add` that way) and the ingress URL-decodes keys; aiohttp's parser refuses them. The
serving layer escapes them first, so the applications see the same percent-encoded target either way.
"""

from __future__ import annotations

import re

_NON_ASCII = re.compile(rb"[\x80-\xff]")


def escape_non_ascii(target: bytes) -> bytes:
    """`target` with every byte above 0x7F as `%XX` (ASCII targets are returned as they are)."""
    if target.isascii():
        return target
    return _NON_ASCII.sub(lambda m: b"%%%02X" % m.group()[0], target)


def escape_request_line(data: bytes) -> tuple[bytes, bool]:
    """Escape the start of an HTTP/1.x connection's bytes up to the end of its request line.

    Returns the bytes to parse and whether the request line ended in them.
    """
    end = data.find(b"\n")
    if end < 0:
        return escape_non_ascii(data), False
    return escape_non_ascii(data[: end + 1]) + data[end + 1 :], True
