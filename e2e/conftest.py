"""Fixtures of the end-to-end tests: fakekube and the test kubelet as subprocesses, kubectl helpers.

``KUBECONFIG`` points at one file per test session, set before anything imports ``kubernetes`` or
``kopf`` (the ``kubernetes`` package reads the variable at import time, and kopf logs in through it);
each fakekube fixture rewrites that file for its own server.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SESSION_DIR = Path(tempfile.mkdtemp(prefix="restate-e2e-"))
KUBECONFIG = SESSION_DIR / "kubeconfig"
os.environ["KUBECONFIG"] = str(KUBECONFIG)
os.environ.setdefault("KUBECACHEDIR", str(SESSION_DIR / "kubecache"))
KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")
POD_PYTHONPATH = os.pathsep.join(str(REPO / d) for d in ("server", "operator", "."))
"""Pods import this checkout's packages first (not whatever the virtualenv's editable install points at)."""

JsonObj = dict[str, Any]


def wait_for(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.1,
    diagnostics: Callable[[], str] | None = None,
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as e:  # the condition may raise while the world converges
            last_error = e
        time.sleep(interval)
    message = f"timed out after {timeout}s waiting for {what}"
    if last_error is not None:
        message += f" (last error: {last_error!r})"
    pytest.fail(message + (f"\n{diagnostics()}" if diagnostics else ""))


def start(
    argv: list[str], log: Path, ready_file: Path, timeout: float = 30
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a helper process in its own session; wait for the ready file it writes; return its text."""
    ready_file.unlink(missing_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not ready_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            pytest.fail(f"{argv[:3]} did not start; log:\n{tail(log)}")
        time.sleep(0.05)
    return proc, ready_file.read_text()


def stop(proc: subprocess.Popen[bytes], grace: float = 20) -> None:
    """SIGTERM the process group, SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Cluster:
    """A running fakekube and the ways the tests talk to it."""

    url: str
    log: Path

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60) -> str:
        argv = [KUBECTL, *args]
        if args and args[0] in ("apply", "create", "replace"):
            argv.append("--validate=false")
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )
        return done.stdout + (done.stderr if not check else "")

    def apply(self, manifest: str) -> str:
        return self.kubectl("apply", "-f", "-", stdin=manifest)

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def get(self, path: str) -> JsonObj | None:
        status, body = self.request("GET", path)
        if status == 404:
            return None
        assert status == 200, body
        result: JsonObj = body
        return result


def write_kubeconfig(url: str) -> None:
    KUBECONFIG.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fakekube", "cluster": {"server": url}}],
                "users": [{"name": "fakekube", "user": {"token": "fakekube"}}],
                "contexts": [
                    {
                        "name": "fakekube",
                        "context": {"cluster": "fakekube", "user": "fakekube", "namespace": "default"},
                    }
                ],
                "current-context": "fakekube",
            }
        )
    )
    kube_config = sys.modules.get("kubernetes.config.kube_config")
    if kube_config is not None:  # imported before this conftest set KUBECONFIG
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(KUBECONFIG)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def fakekube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if shutil.which(KUBECTL) is None:
        pytest.skip(f"kubectl not found at {KUBECTL} (set $KUBECTL): the e2e tests drive fakekube with it")
    work = tmp_path_factory.mktemp("fakekube")
    log = work / "fakekube.log"
    proc, url = start(
        [
            sys.executable,
            "-m",
            "e2e.fakekube",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--ready-file",
            str(work / "ready"),
        ],
        log,
        work / "ready",
    )
    write_kubeconfig(url)
    try:
        yield Cluster(url=url, log=log)
    finally:
        stop(proc, grace=5)


@dataclass
class Kubelet:
    workdir: Path
    hosts_file: Path
    pod_prefix: str
    log: Path

    def pod_logs(self, namespace: str, name_prefix: str, lines: int = 40) -> str:
        out = []
        for log in sorted((self.workdir / "pods" / namespace).glob(f"{name_prefix}*/*.log")):
            out.append(f"== {log}\n{tail(log, lines)}")
        return "\n".join(out)


@pytest.fixture(scope="module")
def kubelet(fakekube: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubelet]:
    if shutil.which("gcc") is None or not sys.platform.startswith("linux"):
        pytest.skip("the test kubelet needs Linux and gcc (it compiles its LD_PRELOAD network shim)")
    work = tmp_path_factory.mktemp("kubelet")
    log = work / "kubelet.log"
    argv = [
        sys.executable,
        "-m",
        "e2e.kubelet",
        "--server",
        fakekube.url,
        "--workdir",
        str(work),
        "--ready-file",
        str(work / "ready"),
        "--cwd",
        str(REPO),
        "--pythonpath",
        POD_PYTHONPATH,
    ]
    proc, info = start(argv, log, work / "ready", timeout=60)
    details = json.loads(info)
    try:
        yield Kubelet(
            workdir=work, hosts_file=Path(details["hosts_file"]), pod_prefix=details["pod_prefix"], log=log
        )
    finally:
        stop(proc, grace=30)
