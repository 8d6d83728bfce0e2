"""Handing freed heap memory back to the operating system after large, short-lived allocations.

A 30 MiB request body passes through several buffers (ingress, log record, journal entry, replay,
response); once they are freed, glibc keeps most of that memory in its heap for reuse (its mmap
threshold grows after the first large free, so later large buffers come from the heap), and the
process stays hundreds of megabytes larger than it needs to be. ``trim_soon`` asks glibc to
release free heap pages (``malloc_trim``) shortly after such work, off the event loop; elsewhere
(no glibc) it does nothing. Before that it asks the registered holders (``hold``) to let go: RocksDB
keeps the last large value written in a memtable until the next write, so the stores flush.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import sys
import weakref
from typing import Protocol

log = logging.getLogger(__name__)

DELAY = 1.0  # seconds: lets the work that triggered it drop its buffers first


@functools.cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: ctypes._CFuncPtr = libc.malloc_trim  # type: ignore[name-defined]
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class Holder(Protocol):
    """Something that keeps large values in native memory it can let go of (a store's memtables)."""

    def release_memory(self) -> None: ...


_holders: weakref.WeakSet[Holder] = weakref.WeakSet()


def hold(holder: Holder) -> None:
    """Have every trim ask ``holder`` to let go of what it keeps first (until it is collected)."""
    _holders.add(holder)


def trim() -> None:
    """Return free heap memory to the OS now (blocking: tens of milliseconds on a large heap)."""
    for holder in list(_holders):
        try:
            holder.release_memory()
        except Exception:  # a store failing to flush (disk full) reports it on its own writes
            log.warning("releasing memory of %r failed", holder, exc_info=True)
    arrow = sys.modules.get("pyarrow")  # loaded by the first SQL query; its pool keeps freed memory
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
    release = _malloc_trim()
    if release is not None:
        release(0)


_scheduled: set[asyncio.AbstractEventLoop] = set()


def trim_soon() -> None:
    """Trim once, ``DELAY`` seconds from now, in a worker thread; calls meanwhile add nothing."""
    loop = asyncio.get_running_loop()
    if loop in _scheduled:
        return
    _scheduled.add(loop)

    def run() -> None:
        _scheduled.discard(loop)
        loop.run_in_executor(None, trim)

    loop.call_later(DELAY, run)
