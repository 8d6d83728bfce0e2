"""From a pod's first container to a local command line: env, downward API, volumes and paths.

Mapping rules (also in ``e2e/README.md``):

* Volumes become directories under the pod's root: ``emptyDir`` and ``csi`` → an empty directory,
  ``configMap``/``secret`` → one file per key (or per ``items`` entry), ``persistentVolumeClaim`` → a
  directory per claim kept across pod restarts and re-creations.
* Every ``volumeMount.mountPath`` (``/config``) is rewritten to its directory wherever it appears as a
  path prefix in the command, the args, env values, ``workingDir`` and the text of ConfigMap files
  (``RESTATE_CONFIG=/config/config.toml`` → ``<pod root>/config/config.toml``).
* ``$(VAR)`` expands from the env entries defined before it, as Kubernetes does; unknown ones stay.
* The image is ignored: ``command[0]`` is looked up in the virtualenv's ``bin`` first, then ``PATH``;
  ``python``/``python3`` is the kubelet's interpreter. Without a command, ``args`` is the command line.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JsonObj = dict[str, Any]

_VAR_RE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")
BIN_DIR = Path(sys.executable).parent


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined variables expand, ``$$`` escapes, others stay."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_RE.sub(sub, text)


def field_ref(pod: JsonObj, path: str, pod_ip: str) -> str:
    md, spec = pod.get("metadata", {}), pod.get("spec", {})
    if m := re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path):
        return str((md.get(m.group(1)) or {}).get(m.group(2), ""))
    values = {
        "metadata.name": md.get("name", ""),
        "metadata.namespace": md.get("namespace", ""),
        "metadata.uid": md.get("uid", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": pod_ip,
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
    }
    return str(values.get(path, ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class Sources:
    """ConfigMaps and Secrets of the pod's namespace, by name (data already decoded for Secrets)."""

    configmaps: Mapping[str, Mapping[str, str]]
    secrets: Mapping[str, Mapping[str, str]]


def decode_secret(secret: JsonObj) -> dict[str, str]:
    out = {k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.get("data") or {}).items()}
    out.update(secret.get("stringData") or {})
    return out


class MissingSource(Exception):
    """A referenced ConfigMap or Secret (or key) does not exist yet: the pod cannot start."""


def _ref_value(ref: JsonObj, sources: Mapping[str, Mapping[str, str]], what: str) -> str | None:
    data = sources.get(ref.get("name", ""))
    if data is None or ref["key"] not in data:
        if ref.get("optional"):
            return None
        raise MissingSource(f"{what} {ref.get('name')!r} key {ref.get('key')!r} not found")
    return data[ref["key"]]


def container_env(pod: JsonObj, container: JsonObj, pod_ip: str, sources: Sources) -> dict[str, str]:
    """The container's environment as Kubernetes computes it (envFrom first, then env in order)."""
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        if "configMapRef" in src:
            data = sources.configmaps.get(src["configMapRef"]["name"])
        else:
            data = sources.secrets.get(src.get("secretRef", {}).get("name", ""))
        if data is None:
            if (src.get("configMapRef") or src.get("secretRef") or {}).get("optional"):
                continue
            raise MissingSource(f"envFrom source of {container.get('name')} not found")
        env.update({prefix + k: v for k, v in data.items()})
    for item in container.get("env") or []:
        name = item["name"]
        if "value" in item:
            env[name] = expand(str(item["value"]), env)
            continue
        source = item.get("valueFrom") or {}
        value: str | None = ""
        if "fieldRef" in source:
            value = field_ref(pod, source["fieldRef"]["fieldPath"], pod_ip)
        elif "configMapKeyRef" in source:
            value = _ref_value(source["configMapKeyRef"], sources.configmaps, "ConfigMap")
        elif "secretKeyRef" in source:
            value = _ref_value(source["secretKeyRef"], sources.secrets, "Secret")
        elif "resourceFieldRef" in source:
            value = "0"
        if value is not None:
            env[name] = value
    return env


def rewrite_paths(text: str, mounts: Mapping[str, Path]) -> str:
    """Replace mount paths used as path prefixes by their directories, in one pass (longest first)."""
    if not mounts:
        return text
    by_path = {m.rstrip("/") or "/": str(d) for m, d in mounts.items()}
    alternatives = "|".join(re.escape(m) for m in sorted(by_path, key=len, reverse=True))
    pattern = r"(?<![\w./-])(" + alternatives + r")(?=/|$|[\s:;,\"'=])"
    return re.sub(pattern, lambda m: by_path[m.group(1)], text)


def _write_files(
    target: Path, data: Mapping[str, str], items: list[JsonObj] | None, mounts: Mapping[str, Path]
) -> None:
    target.mkdir(parents=True, exist_ok=True)
    chosen: list[tuple[str, str]] = (
        [(str(i["key"]), str(i.get("path", i["key"]))) for i in items] if items else [(k, k) for k in data]
    )
    for key, rel in chosen:
        if key in data:
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rewrite_paths(data[key], mounts))


def materialise_volumes(pod: JsonObj, root: Path, pvc_root: Path, sources: Sources) -> dict[str, Path]:
    """Create the pod's volumes under ``root``; returns mountPath → directory for the first container."""
    namespace = pod["metadata"].get("namespace", "")
    volumes: dict[str, tuple[Path, JsonObj]] = {}
    for vol in pod.get("spec", {}).get("volumes") or []:
        if "persistentVolumeClaim" in vol:
            path = pvc_root / namespace / vol["persistentVolumeClaim"]["claimName"]
        else:
            path = root / "volumes" / vol["name"]
        volumes[vol["name"]] = (path, vol)
    container = pod["spec"]["containers"][0]
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts") or []:
        if mount["name"] in volumes:
            path = volumes[mount["name"]][0]
            mounts[mount["mountPath"]] = path / mount["subPath"] if mount.get("subPath") else path
    for path, vol in volumes.values():
        path.mkdir(parents=True, exist_ok=True)
        if "configMap" in vol:
            data = sources.configmaps.get(vol["configMap"]["name"])
            if data is None and not vol["configMap"].get("optional"):
                raise MissingSource(f"ConfigMap {vol['configMap']['name']!r} not found")
            _write_files(path, data or {}, vol["configMap"].get("items"), mounts)
        elif "secret" in vol:
            data = sources.secrets.get(vol["secret"]["secretName"])
            if data is None and not vol["secret"].get("optional"):
                raise MissingSource(f"Secret {vol['secret']['secretName']!r} not found")
            _write_files(path, data or {}, vol["secret"].get("items"), {})
    for path in mounts.values():
        path.mkdir(parents=True, exist_ok=True)
    return mounts


def resolve_command(container: JsonObj, env: Mapping[str, str], mounts: Mapping[str, Path]) -> list[str]:
    """The local argv of a container (see the module docstring for the lookup rules)."""
    command = [expand(str(c), env) for c in container.get("command") or []]
    args = [expand(str(a), env) for a in container.get("args") or []]
    argv = [rewrite_paths(a, mounts) for a in command + args]
    if not argv:
        raise MissingSource("the container has neither command nor args (images are not run)")
    exe = argv[0]
    if Path(exe).name in ("python", "python3", Path(sys.executable).name):
        argv[0] = sys.executable
    elif (BIN_DIR / Path(exe).name).exists():
        argv[0] = str(BIN_DIR / Path(exe).name)
    elif not Path(exe).is_absolute():
        found = shutil.which(exe, path=f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
        if found is None:
            raise MissingSource(f"command {exe!r} not found in {BIN_DIR} or PATH")
        argv[0] = found
    return argv
