"""Optional sampling profiles of this project's server during each scenario (``--profile``).

py-spy attaches to the running server from outside (no code change, works on the release build)
and writes collapsed stacks, one file per scenario, plus ``summary.txt`` with the functions that
use the most time, by self time and inclusive. Sampling costs the server some CPU, so a profiled
run's figures are marked as such in the report and should not be compared with unprofiled ones.
"""

from __future__ import annotations

import collections
import contextlib
import math
import re
import shutil
import subprocess
from pathlib import Path

#: Samples per second: enough resolution for a 10-second window, light enough not to dominate.
RATE_HZ = 200


def available() -> str | None:
    """Path of the py-spy executable, if installed."""
    return shutil.which("py-spy") or (
        str(p) if (p := Path(__file__).parent.parent / ".venv/bin/py-spy").exists() else None
    )


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")


def start(pid: int, out: Path, duration_s: float) -> subprocess.Popen[bytes] | None:
    """Begin sampling ``pid`` (and its subprocesses) for ``duration_s`` into ``out`` (collapsed stacks)."""
    exe = available()
    if exe is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--rate",
            str(RATE_HZ),
            "--nonblocking",
            "--duration",
            str(math.ceil(duration_s)),
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def finish(proc: subprocess.Popen[bytes] | None, timeout_s: float = 30.0) -> None:
    if proc is None:
        return
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def top_frames(raw: Path, count: int = 15) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(self, inclusive) shares of samples per frame, highest first, from a collapsed-stack file."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    with contextlib.suppress(OSError):
        for line in raw.read_text(errors="replace").splitlines():
            stack, _, samples = line.rpartition(" ")
            if not stack or not samples.isdigit():
                continue
            n = int(samples)
            frames = stack.split(";")
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    if total == 0:
        return [], []
    return (
        [(frame, n / total) for frame, n in own.most_common(count)],
        [(frame, n / total) for frame, n in inclusive.most_common(count)],
    )


def summarize(directory: Path) -> None:
    """Write ``summary.txt`` next to the per-scenario profiles."""
    lines = []
    for raw in sorted(directory.glob("*.txt")):
        if raw.name == "summary.txt":
            continue
        own, inclusive = top_frames(raw)
        lines += [f"== {raw.stem}", "-- self time"]
        lines += [f"{share:6.1%}  {frame}" for frame, share in own]
        lines += ["-- inclusive (top-level frames such as the event loop are always near 100 %)"]
        lines += [f"{share:6.1%}  {frame}" for frame, share in inclusive]
        lines.append("")
    (directory / "summary.txt").write_text("\n".join(lines))
