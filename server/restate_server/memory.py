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
import os
import sys
import weakref
from typing import Protocol

log = logging.getLogger(__name__)

DELAY = 1.0  # seconds: lets the work that triggered it drop its buffers first


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc, or None elsewhere (musl has neither malloc_trim nor these mallopt parameters)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


class Holder(Protocol):
    """Something that keeps large values in native memory it can let go of (a store's memtables)."""

    def release_memory(self) -> None: ...


_holders: weakref.WeakSet[Holder] = weakref.WeakSet()


def hold(holder: Holder) -> None:
    """Have every trim ask ``holder`` to let go of what it keeps first (until it is collected)."""
    _holders.add(holder)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 1024 * 1024  # the most glibc's own adjustment would raise it to
TRIM_THRESHOLD = 16 * 1024 * 1024


def bound_free_heap_tops() -> None:
    """Fix glibc's mmap and trim thresholds, so no heap keeps more than 16 MiB free at its top.

    By default both grow after the first large free (mmap to 32 MiB, trim to twice that): large
    buffers then come from the heaps, and a thread's heap may keep 64 MiB free at its top, which
    ``malloc_trim`` does not return (it trims only the main heap's top). Three 20 MiB calls left
    100-200 MB behind. With the thresholds fixed, buffers up to 32 MiB still come from the heaps
    (reused without page faults), and a top past 16 MiB goes back to the OS as it is freed.
    ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` in the environment wins.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)


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
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


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
