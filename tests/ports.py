"""Free TCP ports for the servers, brokers and services the tests start.

Run serially, the kernel picks (a port bound to 0 and released). Under pytest-xdist, several
workers pick at once and a port one worker released may reach another before the first binds it
again; so each worker takes ports from a range of its own, below the kernel's ephemeral range
(32768 and up, which outgoing connections use), and never hands out the same port twice.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from collections.abc import Iterator

_WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1", ... under xdist
_RANGE = 2000
_BASE = 12000


def _ports_of_this_worker() -> Iterator[int] | None:
    """Every port of this worker's range, endlessly, from a random start; None when not under xdist."""
    if _WORKER is None:
        return None
    first = _BASE + int(_WORKER.removeprefix("gw")) * _RANGE
    start = random.randrange(_RANGE)
    return itertools.cycle(first + (start + offset) % _RANGE for offset in range(_RANGE))


_cursor = _ports_of_this_worker()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at the moment on ``host``."""
    if _cursor is None:
        with socket.socket() as s:
            s.bind((host, 0))
            return int(s.getsockname()[1])
    for _ in range(_RANGE):
        port = next(_cursor)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in worker {_WORKER}'s range")
