"""What the operator scenarios share: the operator running in-process against fakekube, and HTTP calls.

Each scenario module (``test_operator_e2e``, ``test_cluster_e2e``) gets its own fakekube and kubelet
(module-scoped fixtures) and runs the operator through :func:`operator_running`: the CRDs applied, the
resync interval shortened, kopf and operator logs in one file, and cluster DNS names resolved through
the kubelet's hosts map so the operator's default URL templates work.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, Cluster, Kubelet
from .kubelet import dns

CRD_PLURALS = ("restateclusters", "restatedeployments", "subscriptions")


def http(method: str, url: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
    """One HTTP request; JSON in and out when possible; status 0 when nothing answered."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json"}
    if data is not None:  # a handler without input refuses a content type (as upstream)
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    except (urllib.error.URLError, OSError) as e:  # refused, reset, timed out: no HTTP answer at all
        return 0, f"no answer: {e!r}"
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


@contextlib.contextmanager
def operator_running(fakekube: Cluster, kubelet: Kubelet, log_path: Path) -> Iterator[None]:
    """The CRDs applied and the operator running in this process until the block ends."""
    for crd in sorted((REPO / "crds").glob("*.restate.dev.yaml")):
        fakekube.kubectl("apply", "-f", str(crd))
    for name in CRD_PLURALS:
        fakekube.kubectl("wait", "--for=condition=established", "--timeout=10s", f"crd/{name}.restate.dev")
    env = pytest.MonkeyPatch()
    env.setenv("RESTATE_OPERATOR_RESYNC_SECONDS", os.environ.get("RESTATE_OPERATOR_RESYNC_SECONDS", "2"))
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    watched = [logging.getLogger(n) for n in ("kopf", "restate_operator")]
    for logger in watched:
        logger.addHandler(handler)
    from kopf.testing import KopfRunner

    args = ["run", "-A", "--standalone", "--verbose", "-m", "restate_operator.main"]
    try:
        with dns.install_resolver(kubelet.hosts_file), KopfRunner(args, timeout=120) as runner:
            yield
    finally:
        for logger in watched:
            logger.removeHandler(handler)
        handler.close()
        env.undo()
    assert runner.exception is None, f"operator crashed: {runner.exception!r}\n{runner.output[-3000:]}"


def pod_processes(prefix: str) -> list[int]:
    """Pids of live processes started by the kubelet with a pod IP under ``prefix``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(e.startswith(f"FAKEKUBE_POD_IP={prefix}".encode()) for e in environ):
            found.append(int(proc.name))
    return found
