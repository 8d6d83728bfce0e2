"""Processes under test: start, wait for readiness, sample CPU and memory from /proc, stop.

Everything here reads the kernel's own accounting (``/proc/<pid>/stat`` and ``status``) so the
figures mean the same for a Rust binary and a Python process: CPU is user+system time of the whole
process tree (live descendants plus the reaped children the kernel folded into ``cutime``/``cstime``),
memory is the summed ``VmRSS`` of that tree.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    children = _children_map()
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def cpu_seconds(pid: int, *, with_tree: bool = True) -> float:
    """User+system CPU seconds of ``pid`` (and its descendants, and its reaped children)."""
    pids = tree(pid) if with_tree else [pid]
    ticks = 0
    for index, current in enumerate(pids):
        fields = _stat_fields(current)
        if fields is None:
            continue
        # Fields after the command name: utime=11, stime=12, cutime=13, cstime=14 (0-based here).
        ticks += int(fields[11]) + int(fields[12])
        if index == 0:
            ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def system_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (``/proc/stat``; not per namespace)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_bytes(pid: int) -> int:
    """Summed resident set size of the process tree."""
    return sum(_status_kb(current, "VmRSS") for current in tree(pid)) * 1024


def hwm_bytes(pid: int) -> int:
    """Peak resident set size of ``pid`` itself, as the kernel recorded it (since the last reset)."""
    return _status_kb(pid, "VmHWM") * 1024


def reset_hwm(pid: int) -> None:
    """Restart the kernel's peak RSS of ``pid`` from its current RSS (``clear_refs`` 5, Linux 4.0+)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def disk_usage(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (what ``du -s`` reports), not apparent sizes."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The HTTP status ``url`` answers with, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, urllib.error.URLError, ValueError):
        return None


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when ``url`` answers 2xx."""
    status = http_status(url, timeout)
    return status is not None and 200 <= status < 300


@dataclasses.dataclass(kw_only=True)
class Ports:
    """Loopback ports of one server under test."""

    ingress: int = 8080
    admin: int = 9070
    node: int = 5122

    @property
    def ingress_url(self) -> str:
        return f"http://127.0.0.1:{self.ingress}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin}"

    def env(self) -> dict[str, str]:
        """Upstream's configuration keys; this project's server reads the same ones."""
        return {
            "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{self.ingress}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{self.admin}",
            "RESTATE_BIND_ADDRESS": f"127.0.0.1:{self.node}",
        }


@dataclasses.dataclass(kw_only=True)
class ServerSpec:
    """How to launch one server under test."""

    name: str
    argv: list[str]
    ports: Ports
    extra_env: dict[str, str] = dataclasses.field(default_factory=dict)

    def health_urls(self) -> dict[str, int]:
        """Health URL -> the lowest status that is *not* ready.

        The admin must answer 2xx. For the ingress any answer below 500 counts (a server without the
        ``/restate/health`` route yet still serves calls); the status seen is kept in ``health_seen``.
        """
        return {f"{self.ports.admin_url}/health": 300, f"{self.ports.ingress_url}/restate/health": 500}


class Running:
    """One live server process with its log file; ``stop`` or ``kill`` ends it."""

    def __init__(self, spec: ServerSpec, base_dir: Path, log_path: Path) -> None:
        self.spec = spec
        self.base_dir = base_dir
        self.log_path = log_path
        env = dict(os.environ)
        env.update(spec.ports.env())
        env.update(spec.extra_env)
        self.health_seen: dict[str, int] = {}
        self.started = time.monotonic()
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                spec.argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, deadline_s: float) -> float | None:
        """Seconds from spawn until the health endpoints answer (see ``health_urls``); None on exit or deadline."""
        end = self.started + deadline_s
        pending = dict(self.spec.health_urls())
        while time.monotonic() < end:
            if not self.alive():
                return None
            for url, limit in list(pending.items()):
                status = http_status(url, timeout=0.5)
                if status is not None:
                    self.health_seen[url] = status
                    if 200 <= status < limit:
                        del pending[url]
            if not pending:
                return time.monotonic() - self.started
            time.sleep(0.02)
        return None

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash, for the restart measurement)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Sampler:
    """Peak tree RSS of a process, sampled on demand (the harness calls ``sample`` from its loop),
    and a timeline of it: (seconds since the sampler started, MB) at most once per ``every_s``.

    Peaks per phase include the kernel's high-water mark, reset as each phase begins: a query's
    sub-second spike falls between samples a second apart (one of 476 MB was once reported as 329).
    """

    def __init__(self, pid: int, every_s: float = 1.0) -> None:
        self.pid = pid
        self.peak = 0
        self.started = time.monotonic()
        self.every_s = every_s
        self.timeline: list[tuple[float, float]] = []
        self.phase = "start"
        #: Peak tree RSS per phase of the run (what the harness was doing when sampled).
        self.phase_peaks: dict[str, int] = {}

    def follow(self, pid: int) -> None:
        """Sample another process from now on (the same server restarted); the timeline goes on."""
        self.pid = pid

    def begin(self, phase: str) -> None:
        """End the current phase (its peak so far) and start counting ``phase``'s from now."""
        self.sample()
        reset_hwm(self.pid)
        self.phase = phase

    def sample(self) -> int:
        current = rss_bytes(self.pid)
        high = max(current, hwm_bytes(self.pid))
        self.peak = max(self.peak, high)
        self.phase_peaks[self.phase] = max(self.phase_peaks.get(self.phase, 0), high)
        now = time.monotonic() - self.started
        if not self.timeline or now - self.timeline[-1][0] >= self.every_s:
            self.timeline.append((round(now, 1), round(current / 1e6, 1)))
        return current
