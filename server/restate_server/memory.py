"""Handing freed heap memory back to the operating system after large, short-lived allocations.

A 30 MiB request body passes through several buffers (ingress, log record, journal entry, replay,
response); once they are freed, glibc keeps most of that memory in its heap for reuse, and the
process stays hundreds of megabytes larger than it needs to be. ``trim`` asks glibc to release free
heap pages (``malloc_trim``); before that it asks the registered holders (``hold``) to let go:
RocksDB keeps the last large value written in a memtable until the next write, so the stores flush.

Trims run in the node's ``Releaser`` task, off the event loop, for two reasons. Work that handles
large values asks for one (``trim_soon``, from any thread), which runs ``DELAY`` seconds later so
the work has dropped its buffers by then. And, because under load the last buffers of a call may be
freed well after that (the response still being read by a slow client, the state machine applying
the output later), the task also trims when glibc's heaps hold ``HEAP_GROWTH`` more free bytes than
they did after the last trim: freed memory is returned whoever freed it and whenever. Elsewhere (no
glibc) trimming does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol, cast

log = logging.getLogger(__name__)

DELAY = 1.0  # seconds from a request to its trim: lets the work that asked drop its buffers first


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


def trim(*, release_holders: bool = True) -> None:
    """Return free heap memory to the OS now (blocking: tens of milliseconds on a large heap).

    ``release_holders=False`` skips the holders' flushes (needed only after large writes, which ask).
    """
    for holder in list(_holders) if release_holders else ():
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


LARGE_WRITE_BYTES = 8 * 1024 * 1024  # a store write this large stays in a memtable: ask for a trim
HEAP_GROWTH = TRIM_THRESHOLD  # free heap bytes that make a trim worthwhile without a request
CHECK_INTERVAL = 1.0  # seconds between the releaser's looks at the heap

_requests = threading.Lock()
_requested_at: float | None = None  # the oldest request not yet served (monotonic seconds)


def trim_soon() -> None:
    """Ask for a trim ``DELAY`` seconds from now (from any thread; requests meanwhile add nothing)."""
    global _requested_at
    with _requests:
        if _requested_at is None:
            _requested_at = time.monotonic()


def _take_due_request(now: float) -> bool:
    """Whether a request is at least ``DELAY`` old; if so it is served (the next one starts anew)."""
    global _requested_at
    with _requests:
        if _requested_at is None or now - _requested_at < DELAY:
            return False
        _requested_at = None
        return True


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (malloc.h): ten ``size_t`` counters; ``fordblks`` is free bytes."""

    _FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS.split()]


@functools.cache
def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    libc = _libc()
    function = getattr(libc, "mallinfo2", None)  # glibc 2.33 and later
    if function is None:
        return None
    function.restype = _MallInfo2
    return cast("Callable[[], _MallInfo2]", function)


def free_heap_bytes() -> int | None:
    """Bytes free in glibc's heaps (resident or not: trimmed pages stay counted), or None."""
    mallinfo2 = _mallinfo2()
    return None if mallinfo2 is None else int(mallinfo2().fordblks)


class Releaser:
    """The node's task that runs trims: those asked for, and those the heap's growth calls for."""

    def __init__(self) -> None:
        self._low = free_heap_bytes()  # the heap's free bytes after the last trim, or lower since

    async def run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            if _take_due_request(time.monotonic()):
                await asyncio.to_thread(trim)
            elif self.heap_grew():
                await asyncio.to_thread(trim, release_holders=False)
            else:
                continue
            self._low = free_heap_bytes()

    def heap_grew(self) -> bool:
        """Whether the heaps hold ``HEAP_GROWTH`` more free bytes than after the last trim."""
        free = free_heap_bytes()
        if free is None or self._low is None:
            return False
        # Memory taken from the free lists again is resident when it is freed next: track the low.
        self._low = min(self._low, free)
        return free - self._low >= HEAP_GROWTH
