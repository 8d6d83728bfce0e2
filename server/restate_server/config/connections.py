"""Connection limits of one HTTP listener (ingress, admin): keys this server adds beyond upstream.

Upstream's hyper listeners have no header-read timeout for HTTP/1.1 and no connection cap, so a client
that opens connections and never finishes a request head holds them forever. These three keys bound
that; they live under each listener's section (`ingress.`, `admin.`) next to its `bind-address`, and
are not in upstream's catalogue (`keys.py`), so each section lists them in its `OWN_KEYS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from restate_server.config.layers import Reader
from restate_server.config.units import format_duration

LEAVES = ("header-read-timeout", "idle-connection-timeout", "max-connections")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLimits:
    """Timeouts and the connection cap of one listener (read by `restate_server.web.serving`)."""

    header_read_timeout: float = 30.0
    """`header-read-timeout`, seconds from accepting a connection to the end of its first request
    head; past it the connection is closed (slow-header clients). Default 30s, hyper's own default."""
    idle_connection_timeout: float = 75.0
    """`idle-connection-timeout`, seconds a keep-alive connection may wait for its next complete
    request head before it is closed. Default 75s: longer than the 60s of common load balancers, so
    the proxy closes first and never sends on a connection this server is closing."""
    max_connections: int = 1024
    """`max-connections`: open connections this listener keeps; a connection accepted past it is
    closed at once. Default 1024, well under the usual open-file limit."""


def read(get: Reader, section: str) -> ConnectionLimits:
    return ConnectionLimits(
        header_read_timeout=get.duration(f"{section}.header-read-timeout", 30.0, non_zero=True),
        idle_connection_timeout=get.duration(f"{section}.idle-connection-timeout", 75.0, non_zero=True),
        max_connections=get.integer(f"{section}.max-connections", 1024, minimum=1),
    )


def dump(limits: ConnectionLimits) -> dict[str, object]:
    return {
        "header-read-timeout": format_duration(limits.header_read_timeout),
        "idle-connection-timeout": format_duration(limits.idle_connection_timeout),
        "max-connections": limits.max_connections,
    }


def own_keys(section: str) -> tuple[str, ...]:
    """The dotted keys of `section` this module reads."""
    return tuple(f"{section}.{leaf}" for leaf in LEAVES)
