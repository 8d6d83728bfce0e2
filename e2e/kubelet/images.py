"""Images the test kubelet runs as local programs: which binary stands in, and what it must adapt.

The kubelet pulls no image; a container's ``command[0]`` is looked up locally (``podspec``). That is
enough for our own images, whose command the operator renders, but not for a third-party image started
by its own entrypoint path with flags meant for a pod with a network namespace of its own. Such an image
is listed here and its container rewritten before the pod starts:

* **etcd** (``quay.io/coreos/etcd``, ``registry.k8s.io/etcd``, ``gcr.io/etcd-development/etcd``) runs as
  the local ``etcd`` (Debian's ``etcd-server`` 3.4; the flags the operator renders mean the same in
  3.4 and 3.5). etcd is written in Go, whose socket calls bypass libc, so the ``podnet`` shim cannot
  move its binds: listen URLs on ``0.0.0.0`` or ``[::]`` become the pod IP instead, in the arguments
  and in ``ETCD_LISTEN_*`` variables. Go resolves names through libc when told to
  (``GODEBUG=netdns=cgo``), and then the shim's hosts map answers the members' pod DNS names.
"""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .podspec import MissingSource

JsonObj = dict[str, Any]

_WILDCARD_URL = re.compile(r"://(?:0\.0\.0\.0|\[::\])(?=[:/,]|$)")


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalImage:
    """An image and the local program that stands in for it."""

    repositories: frozenset[str]
    binary: str
    """Name of the local executable (looked up on ``PATH``), also the image's entrypoint file name."""
    package: str
    """Where the binary comes from, for the error when it is missing."""
    env: Mapping[str, str]
    """Variables added unless the container sets them."""
    listen_env_prefix: str
    """Variables whose URLs get the pod IP for a wildcard host, like the listen flags."""


ETCD = LocalImage(
    repositories=frozenset({"quay.io/coreos/etcd", "registry.k8s.io/etcd", "gcr.io/etcd-development/etcd"}),
    binary="etcd",
    package="Debian package etcd-server",
    env={"GODEBUG": "netdns=cgo"},
    listen_env_prefix="ETCD_LISTEN_",
)
IMAGES = (ETCD,)


def repository(image: str) -> str:
    """``quay.io/coreos/etcd:v3.5.17`` → ``quay.io/coreos/etcd`` (tag and digest dropped)."""
    name = image.split("@", 1)[0]
    head, slash, tail = name.rpartition("/")
    return head + slash + tail.split(":", 1)[0]


def _local_argv(container: JsonObj, image: LocalImage, binary: str) -> tuple[list[str], list[str]]:
    """(command, args) with the image's entrypoint replaced by the local binary."""
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    if command:
        return [binary, *command[1:]], args
    if args and Path(args[0]).name == image.binary:  # args replace the image's CMD, entrypoint included
        return [binary], args[1:]
    return [binary], args


def localise(container: JsonObj, pod_ip: str) -> JsonObj:
    """The container as the local stand-in runs it; unchanged when its image is not listed."""
    image = next((i for i in IMAGES if repository(str(container.get("image", ""))) in i.repositories), None)
    if image is None:
        return container
    binary = shutil.which(image.binary)
    if binary is None:
        raise MissingSource(
            f"image {container['image']} runs as the local {image.binary!r} ({image.package})"
        )
    local = copy.deepcopy(container)
    command, args = _local_argv(container, image, binary)
    local["command"] = command
    local["args"] = [_WILDCARD_URL.sub(f"://{pod_ip}", a) for a in args]
    env = []
    for item in local.get("env") or []:
        if item["name"].startswith(image.listen_env_prefix) and "value" in item:
            item = {**item, "value": _WILDCARD_URL.sub(f"://{pod_ip}", str(item["value"]))}
        env.append(item)
    names = {item["name"] for item in env}
    local["env"] = env + [{"name": k, "value": v} for k, v in image.env.items() if k not in names]
    return local
