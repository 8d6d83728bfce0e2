"""Pods as processes: start with env and volumes, probe readiness, restart on exit, stop gracefully.

One supervisor task per pod (by uid) owns its process; the kubelet's reconcile loop only decides which
pods should run. Status (phase, podIP, conditions, containerStatuses) is patched whenever what the
supervisor or the probe knows changes. A pod being deleted is stopped (SIGTERM to its process group,
SIGKILL after the grace period) and then removed from the API with a zero grace period, as a kubelet does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from . import images, podspec
from .api import PODS, Api, ApiFailure

logger = logging.getLogger(__name__)

JsonObj = dict[str, Any]
PR_SET_PDEATHSIG = 1
MAX_BACKOFF = 10.0
"""Seconds between restarts of a crashing container, at most (the real kubelet goes up to 5 minutes)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeSettings:
    workdir: Path
    """Pod roots live in ``<workdir>/pods/<ns>/<name>-<uid8>``, claims in ``<workdir>/pvcs``."""
    shim: Path
    """The compiled ``podnet`` LD_PRELOAD library."""
    hosts_file: Path
    cwd: Path
    """Working directory of pod processes without ``workingDir`` (the repository, for ``python -m``)."""
    pythonpath: str
    probe_period_cap: float = 0.5
    """Probe periods and initial delays are capped to this many seconds, so tests do not wait."""
    grace_cap: float = 10.0
    """``terminationGracePeriodSeconds`` is capped to this many seconds."""


@dataclass(eq=False, kw_only=True)
class PodProcess:
    uid: str
    namespace: str
    name: str
    ip: str
    root: Path
    pod: JsonObj
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    running_since: str | None = None
    ready: bool = False
    waiting: tuple[str, str] | None = None
    finished: int | None = None
    stopping: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    last_status: JsonObj | None = None
    ready_since: str = field(default_factory=_now)

    @property
    def container(self) -> JsonObj:
        containers: list[JsonObj] = self.pod["spec"]["containers"]
        return containers[0]


class Runtime:
    def __init__(
        self,
        api: Api,
        settings: RuntimeSettings,
        sources: Callable[[str], podspec.Sources],
        allocate_ip: Callable[[], str],
        release_ip: Callable[[str], None],
    ) -> None:
        self.api = api
        self.settings = settings
        self.sources = sources
        self.allocate_ip = allocate_ip
        self.release_ip = release_ip
        self.procs: dict[str, PodProcess] = {}
        self._http: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    # decisions -----------------------------------------------------------------------------------
    def sync(self, pods: list[JsonObj]) -> None:
        """Start, stop and finalise pods so that the processes match the API's pods."""
        seen = set()
        for pod in pods:
            md = pod["metadata"]
            uid = md["uid"]
            seen.add(uid)
            running = self.procs.get(uid)
            if md.get("deletionTimestamp"):
                if running is None:
                    self._spawn(self._finalise(md["namespace"], md["name"]), f"finalise-{md['name']}")
                elif not running.stopping:
                    self._begin_stop(running, finalise=True)
                continue
            if running is not None:
                running.pod = pod
                continue
            if any(p.namespace == md["namespace"] and p.name == md["name"] for p in self.procs.values()):
                continue  # the previous incarnation of this name is still stopping
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            self._start(pod)
        for proc in list(self.procs.values()):
            if proc.uid not in seen and not proc.stopping:
                self._begin_stop(proc, finalise=False)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        task.add_done_callback(_log_failure)
        return task

    def _start(self, pod: JsonObj) -> None:
        md = pod["metadata"]
        proc = PodProcess(
            uid=md["uid"],
            namespace=md["namespace"],
            name=md["name"],
            ip=self.allocate_ip(),
            root=self.settings.workdir / "pods" / md["namespace"] / f"{md['name']}-{md['uid'][:8]}",
            pod=pod,
        )
        self.procs[proc.uid] = proc
        logger.info("pod %s/%s gets %s", proc.namespace, proc.name, proc.ip)
        proc.tasks.append(self._spawn(self._supervise(proc), f"pod-{proc.name}"))
        proc.tasks.append(self._spawn(self._probe(proc), f"probe-{proc.name}"))

    def _begin_stop(self, proc: PodProcess, *, finalise: bool) -> None:
        proc.stopping = True
        self._spawn(self._stop(proc, finalise=finalise), f"stop-{proc.name}")

    # processes -----------------------------------------------------------------------------------
    def _prepare(self, proc: PodProcess) -> tuple[list[str], dict[str, str], str, Path]:
        """Volumes on disk, then the argv, environment, working directory and log file of the process."""
        pod, container = proc.pod, images.localise(proc.container, proc.ip)
        sources = self.sources(proc.namespace)
        proc.root.mkdir(parents=True, exist_ok=True)
        mounts = podspec.materialise_volumes(pod, proc.root, self.settings.workdir / "pvcs", sources)
        env = podspec.container_env(pod, container, proc.ip, sources)
        argv = podspec.resolve_command(container, env, mounts)
        env = {k: podspec.rewrite_paths(v, mounts) for k, v in env.items()}
        home = proc.root / "home"
        home.mkdir(exist_ok=True)
        full_env = {
            "PATH": f"{podspec.BIN_DIR}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "HOSTNAME": proc.name,
            "PYTHONPATH": self.settings.pythonpath,
            "PYTHONUNBUFFERED": "1",
            "TMPDIR": str(mounts.get("/tmp", proc.root / "tmp")),
        }
        Path(full_env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
        full_env.update(env)
        full_env.update(
            FAKEKUBE_POD_IP=proc.ip,
            FAKEKUBE_POD_NAMESPACE=proc.namespace,
            FAKEKUBE_HOSTS_FILE=str(self.settings.hosts_file),
            LD_PRELOAD=str(self.settings.shim),
        )
        cwd = podspec.rewrite_paths(container["workingDir"], mounts) if container.get("workingDir") else None
        return argv, full_env, cwd or str(self.settings.cwd), proc.root / f"{container['name']}.log"

    async def _launch(self, proc: PodProcess) -> None:
        argv, full_env, cwd, log_path = self._prepare(proc)
        with log_path.open("ab") as log:
            log.write(f"--- {_now()} starting {argv} on {proc.ip}\n".encode())
            log.flush()
            proc.proc = await asyncio.create_subprocess_exec(
                *argv,
                env=full_env,
                cwd=cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        logger.info("pod %s/%s: started pid %s: %s", proc.namespace, proc.name, proc.proc.pid, " ".join(argv))

    async def _supervise(self, proc: PodProcess) -> None:
        attempt = 0
        policy = proc.pod["spec"].get("restartPolicy", "Always")
        while not proc.stopping:
            try:
                await self._launch(proc)
            except (podspec.MissingSource, OSError) as e:
                proc.waiting = ("CreateContainerConfigError", str(e))
                await self.report(proc)
                await asyncio.sleep(1.0)
                continue
            proc.waiting, proc.running_since = None, _now()
            await self.report(proc)
            assert proc.proc is not None
            code = await proc.proc.wait()
            proc.running_since, proc.ready = None, False
            if proc.stopping:
                return
            logger.warning("pod %s/%s: process exited with %s", proc.namespace, proc.name, code)
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                proc.finished = code
                await self.report(proc)
                return
            proc.restarts += 1
            proc.waiting = ("CrashLoopBackOff", f"exited with {code}")
            await self.report(proc)
            await asyncio.sleep(min(MAX_BACKOFF, 0.5 * 2**attempt))
            attempt += 1

    async def _stop(self, proc: PodProcess, *, finalise: bool) -> None:
        grace = float(proc.pod["spec"].get("terminationGracePeriodSeconds", 30))
        grace = min(grace, self.settings.grace_cap)
        for task in proc.tasks:
            if task.get_name().startswith("probe-"):
                task.cancel()
        child = proc.proc
        if child is not None and child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(child.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                await child.wait()
            logger.info("pod %s/%s: stopped (exit %s)", proc.namespace, proc.name, child.returncode)
        for task in proc.tasks:
            task.cancel()
        self.procs.pop(proc.uid, None)
        self.release_ip(proc.ip)
        if finalise:
            await self._finalise(proc.namespace, proc.name)

    async def _finalise(self, namespace: str, name: str) -> None:
        await self.api.delete(PODS, namespace, name, grace=0)

    def log_path(self, namespace: str, name: str, container: str) -> Path | None:
        """The log file of a pod's container: the running incarnation, else the newest one on disk."""
        for proc in self.procs.values():
            if (proc.namespace, proc.name) == (namespace, name):
                return proc.root / f"{container}.log"
        found = sorted(
            (self.settings.workdir / "pods" / namespace).glob(f"{name}-*/{container}.log"),
            key=lambda p: p.stat().st_mtime,
        )
        return found[-1] if found else None

    async def shutdown(self) -> None:
        """Stop every process (the kubelet is exiting); pods stay in the API."""
        procs = list(self.procs.values())
        for proc in procs:
            proc.stopping = True
        await asyncio.gather(*(self._stop(p, finalise=False) for p in procs), return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    # readiness -----------------------------------------------------------------------------------
    async def _probe(self, proc: PodProcess) -> None:
        cap = self.settings.probe_period_cap
        probe = proc.container.get("readinessProbe")
        if probe is None:
            while True:
                ready = proc.running_since is not None
                if ready != proc.ready:
                    proc.ready = ready
                    proc.ready_since = _now()
                    await self.report(proc)
                await asyncio.sleep(0.1)
        await asyncio.sleep(min(float(probe.get("initialDelaySeconds", 0)), cap))
        period = min(float(probe.get("periodSeconds", 10)), cap)
        successes = failures = 0
        while True:
            ok = proc.running_since is not None and await self._check(proc, probe)
            successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
            ready = proc.ready
            if ok and successes >= int(probe.get("successThreshold", 1)):
                ready = True
            elif not ok and (failures >= int(probe.get("failureThreshold", 3)) or proc.running_since is None):
                ready = False
            if ready != proc.ready:
                proc.ready = ready
                proc.ready_since = _now()
                await self.report(proc)
            await asyncio.sleep(period)

    def _port(self, proc: PodProcess, port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for p in proc.container.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        raise ValueError(f"no container port named {port!r}")

    async def _check(self, proc: PodProcess, probe: JsonObj) -> bool:
        timeout = float(probe.get("timeoutSeconds", 1))
        try:
            if "httpGet" in probe:
                get = probe["httpGet"]
                url = f"http://{proc.ip}:{self._port(proc, get['port'])}{get.get('path', '/')}"
                async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                    return 200 <= resp.status < 400
            if "tcpSocket" in probe:
                port = self._port(proc, probe["tcpSocket"]["port"])
                _, writer = await asyncio.wait_for(asyncio.open_connection(proc.ip, port), timeout)
                writer.close()
                return True
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            return False
        return True  # exec probes are not run: a started container counts as ready

    # status --------------------------------------------------------------------------------------
    def _status(self, proc: PodProcess) -> JsonObj:
        ready = "True" if proc.ready else "False"
        state: JsonObj
        if proc.running_since is not None:
            state = {"running": {"startedAt": proc.running_since}}
        elif proc.finished is not None:
            state = {
                "terminated": {
                    "exitCode": proc.finished,
                    "reason": "Completed" if proc.finished == 0 else "Error",
                }
            }
        else:
            reason, message = proc.waiting or ("ContainerCreating", "")
            state = {"waiting": {"reason": reason, "message": message}}
        phase = "Running" if proc.running_since is not None or proc.restarts else "Pending"
        if proc.finished is not None:
            phase = "Succeeded" if proc.finished == 0 else "Failed"
        container = proc.container
        return {
            "phase": phase,
            "podIP": proc.ip,
            "podIPs": [{"ip": proc.ip}],
            "hostIP": proc.ip,
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": ready, "lastTransitionTime": proc.ready_since},
                {"type": "Ready", "status": ready, "lastTransitionTime": proc.ready_since},
            ],
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container.get("image", ""),
                    "imageID": "",
                    "ready": proc.ready,
                    "started": proc.running_since is not None,
                    "restartCount": proc.restarts,
                    "state": state,
                    "containerID": f"local://{proc.proc.pid}" if proc.proc is not None else "",
                }
            ],
        }

    async def report(self, proc: PodProcess) -> None:
        status = self._status(proc)
        if status == proc.last_status or proc.stopping:
            return
        body = {"status": status}
        if proc.last_status is None:
            body["status"]["startTime"] = _now()
        try:
            result = await self.api.merge_patch(PODS, proc.namespace, proc.name, body, sub="status")
        except (ApiFailure, aiohttp.ClientError) as e:
            logger.warning("pod %s/%s: status update failed: %s", proc.namespace, proc.name, e)
            return
        if result is not None and result["metadata"]["uid"] == proc.uid:
            proc.last_status = status


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the kubelet dies, so no pod outlives it."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("task %s failed", task.get_name(), exc_info=task.exception())
