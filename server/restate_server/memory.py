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
LARGE = 4 * 1024 * 1024


def map_large_buffers() -> None:
    """Give every buffer of ``LARGE`` bytes and more a mapping of its own, unmapped when it is freed.

    glibc's default raises its mmap threshold up to 32 MiB after the first large free, so later large
    buffers come from the heaps; a thread's heap then keeps up to twice that at its top, which
    ``malloc_trim`` does not return (three 20 MiB calls left 100-200 MB behind). A fixed threshold
    keeps payload-sized buffers out of the heaps. ``MALLOC_MMAP_THRESHOLD_`` or
    ``MALLOC_TRIM_THRESHOLD_`` in the environment wins.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, LARGE)
        libc.mallopt(M_TRIM_THRESHOLD, 2 * LARGE)


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
