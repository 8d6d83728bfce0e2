"""Resource URLs parsed into targets (pure): ``/api/v1/…`` and ``/apis/<group>/<version>/…``."""

from __future__ import annotations

from dataclasses import dataclass

_NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    group: str
    version: str
    plural: str
    namespace: str | None = None
    name: str | None = None
    sub: str | None = None


def parse(path: str) -> Target | None:
    """The resource a URL addresses, or None when it is not a resource URL (e.g. discovery)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    is_namespace_sub = len(rest) == 3 and rest[2] in _NAMESPACE_SUBRESOURCES and not group
    if rest[0] == "namespaces" and len(rest) >= 3 and not is_namespace_sub:
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        return None
    return Target(
        group=group,
        version=version,
        plural=rest[0],
        namespace=namespace,
        name=rest[1] if len(rest) > 1 else None,
        sub=rest[2] if len(rest) > 2 else None,
    )
