"""Run this project's server under ``tracemalloc``; touching ``F.dump`` writes what holds memory.

``python -m bench.memtrace --out F [server flags…]`` starts the server exactly as
``restate-py-server`` would, with ``tracemalloc`` tracing 12 frames per allocation. Whenever the
file ``F.dump`` appears (a watcher thread looks twice a second, then removes it), the total
traced memory and the 25 call sites holding the most, grouped by traceback, are appended to ``F``,
so one can tell a cache from a leak after a benchmark. (A file rather than a signal: uvloop runs
Python signal handlers only for signals registered on the loop.) Tracing slows the server down by
about 2x: its figures are for finding holders, not for comparing speed.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import tracemalloc
from pathlib import Path

FRAMES = 12
TOP = 25


def _dump(out: Path) -> None:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        ]
    )
    current, peak = tracemalloc.get_traced_memory()
    lines = [f"== {time.strftime('%H:%M:%S')} traced {current / 2**20:.1f} MiB (peak {peak / 2**20:.1f} MiB)"]
    for stat in snapshot.statistics("traceback")[:TOP]:
        lines.append(f"{stat.size / 2**20:8.2f} MiB in {stat.count} blocks")
        lines += [f"      {frame}" for frame in stat.traceback.format()[-2 * FRAMES :]]
    lines += _holders()
    counts: dict[str, int] = {}
    for obj in gc.get_objects():
        name = type(obj).__qualname__
        if name in ("JournalEntry", "Frame", "Snapshot", "Attempt", "InvocationState", "coroutine", "Task"):
            counts[name] = counts.get(name, 0) + 1
    lines.append(f"  live: {counts}")
    with out.open("a") as f:
        f.write("\n".join(lines) + "\n\n")


def _holders(min_bytes: int = 1 << 20) -> list[str]:
    """Who refers to live large ``bytes`` values: the holder's type and a chain of its referrers."""
    lines = []
    seen: set[int] = set()
    objects = gc.get_objects()
    ours = {id(objects), id(sys._getframe())}  # this walk's own references are not holders
    for obj in objects:
        try:
            members = gc.get_referents(obj)  # also sees frame locals, cells and slots
            # tuples of atomic values (a decoded frame, say) are not tracked by gc: look inside
            members += [m for t in members if isinstance(t, tuple) for m in t]
            if isinstance(obj, memoryview):
                members.append(obj.obj)
            big = [v for v in members if isinstance(v, bytes | bytearray) and len(v) >= min_bytes]
        except Exception:
            continue
        big = [v for v in big if id(v) not in seen]
        if not big:
            continue
        seen.update(id(v) for v in big)
        chain, current = [_describe(obj)], obj
        for _ in range(8):
            found = gc.get_referrers(current)
            ours.add(id(found))
            referrers = [r for r in found if id(r) not in ours]
            if not referrers:
                break
            current = referrers[0]
            chain.append(_describe(current))
        size = sum(len(v) for v in big)
        lines.append(f"  {size / 2**20:8.2f} MiB held by " + " <- ".join(chain))
    return lines


def _describe(obj: object) -> str:
    code = getattr(obj, "f_code", None) or getattr(obj, "cr_code", None) or getattr(obj, "gi_code", None)
    name = type(obj).__qualname__
    return f"{name} {code.co_qualname}" if code is not None else name


def main() -> int:
    args = sys.argv[1:]
    if len(args) < 2 or args[0] != "--out":
        print("usage: python -m bench.memtrace --out FILE [server flags...]", file=sys.stderr)
        return 2
    out = Path(args[1])
    trigger = out.with_name(out.name + ".dump")

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if trigger.exists():
                trigger.unlink()
                _dump(out)

    tracemalloc.start(FRAMES)
    threading.Thread(target=watch, name="memtrace", daemon=True).start()
    from restate_server.__main__ import main as server_main

    return server_main(args[2:])


if __name__ == "__main__":
    sys.exit(main())
