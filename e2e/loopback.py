"""Pick loopback /24 ranges nobody listens on, so parallel test runs on one machine do not collide."""

from __future__ import annotations

import random
from pathlib import Path

_PROC_TCP = (Path("/proc/net/tcp"), Path("/proc/net/udp"))


def busy_prefixes() -> set[str]:
    """``"127.A.B."`` of every IPv4 loopback address with a local socket bound to it now."""
    busy = set()
    for table in _PROC_TCP:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local = line.split()[1].split(":")[0]  # little-endian hex, e.g. 0100007F = 127.0.0.1
            octets = [int(local[i : i + 2], 16) for i in (6, 4, 2, 0)]
            if octets[0] == 127:
                busy.add(f"127.{octets[1]}.{octets[2]}.")
    return busy


def free_prefix(second_octet: int) -> str:
    """A random ``127.<second_octet>.R.`` with no bound socket (R in 2..254)."""
    busy = busy_prefixes()
    choices = [f"127.{second_octet}.{r}." for r in range(2, 255)]
    free = [c for c in choices if c not in busy] or choices
    return random.choice(free)
