"""A private network of Linux network namespaces on one bridge, to cut a process off the network.

`Network` creates a bridge in the host namespace with the first address of a free private /24
(`10.213.x.0/24`, one no existing address or route is in) and, per `add_namespace()`, a network
namespace joined to the bridge by a veth pair. Processes in the host namespace listen on the bridge's
address; processes run in a namespace (`Namespace.launcher`) reach them there, and each other.
`Namespace.cut()` takes the host end of the namespace's veth down: the namespace keeps its address
and loopback (so it can still be called from inside, `Namespace.run`) but no packet crosses the
bridge until `heal()`.

Every name carries a per-network tag, and only what this module created is ever changed or removed
(`close()`; namespaces are deleted before the bridge, and the processes inside must be stopped first).
Needs root and iproute2's `ip`: without them the tests skip, except under ``CI=true`` where that is a
failure (CI runs as root).
"""

from __future__ import annotations

import ipaddress
import os
import random
import re
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

SUPERNET = ipaddress.IPv4Network("10.213.0.0/16")  # /24s are picked inside it
COMMAND_TIMEOUT = 10.0  # seconds for one `ip` command


def require_root_and_ip() -> None:
    """Skip (fail under CI=true) unless this process can create network namespaces."""
    problem = None
    if os.geteuid() != 0:
        problem = "network namespace tests need root"
    elif shutil.which("ip") is None:
        problem = "network namespace tests need iproute2's `ip` (Debian: apt-get install iproute2)"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)


def ip(*args: str) -> str:
    result = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True, slots=True, kw_only=True)
class Namespace:
    name: str
    address: str
    host_veth: str
    """The bridge's end of the namespace's veth pair (the end `cut` takes down)."""

    @property
    def launcher(self) -> tuple[str, ...]:
        """The command prefix that runs a program inside this namespace."""
        return ("ip", "netns", "exec", self.name)

    def run(self, args: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a program inside the namespace (it sees the namespace's loopback even when cut off)."""
        return subprocess.run(
            [*self.launcher, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def cut(self) -> None:
        ip("link", "set", self.host_veth, "down")

    def heal(self) -> None:
        ip("link", "set", self.host_veth, "up")


@dataclass
class Network:
    """A bridge on a free private /24 and the namespaces hanging off it; `close()` removes them all."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    namespaces: list[Namespace] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.subnet = _free_subnet()
        self.bridge = f"rpb{self.tag}"  # interface names have at most 15 characters
        self.address = str(self.subnet.network_address + 1)
        ip("link", "add", self.bridge, "type", "bridge")
        try:
            ip("addr", "add", f"{self.address}/{self.subnet.prefixlen}", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
        except Exception:
            self.close()
            raise

    def add_namespace(self) -> Namespace:
        index = len(self.namespaces) + 1
        namespace = Namespace(
            name=f"rp-{self.tag}-{index}",
            address=str(self.subnet.network_address + 1 + index),
            host_veth=f"rph{self.tag}{index}",
        )
        inner = f"rpn{self.tag}{index}"
        ip("netns", "add", namespace.name)
        self.namespaces.append(namespace)  # from here on, close() removes it
        ip("link", "add", namespace.host_veth, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", namespace.name)
        ip("link", "set", namespace.host_veth, "master", self.bridge)
        ip("link", "set", namespace.host_veth, "up")
        inside = ("-n", namespace.name)
        ip(*inside, "addr", "add", f"{namespace.address}/{self.subnet.prefixlen}", "dev", inner)
        ip(*inside, "link", "set", inner, "up")
        ip(*inside, "link", "set", "lo", "up")
        return namespace

    def close(self) -> None:
        """Delete the namespaces (their veth pairs go with them), then the bridge; report what failed."""
        commands = [("netns", "delete", namespace.name) for namespace in self.namespaces]
        # a host end is gone with its peer, unless moving the peer into the namespace failed
        commands += [("link", "delete", namespace.host_veth) for namespace in self.namespaces]
        commands.append(("link", "delete", self.bridge))
        self.namespaces.clear()
        errors = []
        for command in commands:
            if command[0] == "link" and not _exists(command[2]):
                continue
            try:
                ip(*command)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                errors.append(str(exc))
        if errors:
            raise RuntimeError("; ".join(errors))


def _exists(interface: str) -> bool:
    return subprocess.run(["ip", "link", "show", interface], capture_output=True, check=False).returncode == 0


def _free_subnet() -> ipaddress.IPv4Network:
    """A random /24 of the supernet that overlaps no address or route of the host namespace."""
    taken = [
        ipaddress.ip_network(match, strict=False)
        for match in re.findall(
            r"\d+\.\d+\.\d+\.\d+(?:/\d+)?",
            ip("-4", "-o", "addr", "show") + ip("-4", "route", "show", "table", "all"),
        )
    ]
    candidates = list(SUPERNET.subnets(new_prefix=24))[1:-1]
    random.shuffle(candidates)
    for subnet in candidates:
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise RuntimeError(f"no free /24 in {SUPERNET}")
