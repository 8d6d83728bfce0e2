"""Cluster DNS without a DNS server: an /etc/hosts-style map the kubelet keeps current.

Pod processes read it through the ``podnet`` LD_PRELOAD shim (``podnet.c``); a test process (where the
operator runs in-process) installs :func:`install_resolver`, which patches ``socket.getaddrinfo`` so
``restate.<ns>.svc.cluster.local`` and friends resolve there too. Names are tried as given, then with
the search domains ``<ns>.svc.cluster.local``, ``svc.cluster.local`` and ``cluster.local``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

CLUSTER_DOMAIN = "cluster.local"


def render(entries: Mapping[str, list[str]]) -> str:
    """Hosts-file text from name → IPs (one line per IP and name, sorted for stable diffs)."""
    lines = [f"{ip} {name}" for name in sorted(entries) for ip in entries[name]]
    return "\n".join(lines) + "\n"


def parse(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            out.setdefault(name.lower(), []).append(fields[0])
    return out


def candidates(name: str, namespace: str) -> list[str]:
    name = name.rstrip(".").lower()
    return [
        name,
        f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}",
        f"{name}.svc.{CLUSTER_DOMAIN}",
        f"{name}.{CLUSTER_DOMAIN}",
    ]


def lookup(hosts_file: Path, name: str, namespace: str) -> list[str]:
    try:
        entries = parse(hosts_file.read_text())
    except OSError:
        return []
    for candidate in candidates(name, namespace):
        if candidate in entries:
            return entries[candidate]
    return []


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@contextlib.contextmanager
def install_resolver(hosts_file: Path, namespace: str = "default") -> Iterator[None]:
    """Resolve cluster names in this process through the kubelet's map (for an in-process operator)."""
    original = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host != "localhost" and not _is_ip(host):
            ips = lookup(hosts_file, host, namespace)
            if ips:
                return original(ips[0], port, *args, **kwargs)
        return original(host, port, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = original
