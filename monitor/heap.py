"""The C heap of the process: one malloc arena, large blocks mapped, and what a cycle freed given back.

glibc gives each thread that allocates its own arena (up to 8 a core); the daemon's
threads (the scheduler's workers, the heartbeat, notifications, a fetch's reader) each then keep
the high-water mark of whatever burst they ran, for good.  :func:`tune_heap` asks for a single
arena (``mallopt(M_ARENA_MAX, 1)``), so the pages one thread freed serve the next, and a fixed
mmap threshold, so a page body is given back when freed; every command sets both at start, and
:func:`return_freed_memory` hands back to the system what a cycle freed (``malloc_trim``).
Both are no-ops on another C library or platform.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import sys
from collections.abc import Callable

M_ARENA_MAX = -8  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
LARGE = 1 << 20  # blocks this large or larger are mapped on their own, and unmapped when freed


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library the interpreter runs on, when it is glibc; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim, libc.mallopt  # noqa: B018  (musl and others have neither)
    except (OSError, AttributeError):
        return None
    return libc


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; None on another C library or platform."""
    libc = _libc()
    return libc.malloc_trim if libc is not None else None


@functools.cache
def tune_heap() -> bool:
    """One malloc arena for every thread of this process, and every block of a mebibyte or more
    mapped on its own (call it before the threads start); whether both were set.

    glibc raises its mmap threshold to the size of each large block freed (up to 32 MiB), so after
    the first page body (tens of MB) the next ones came from the heap and stayed in the process when
    freed; a fixed threshold keeps them mapped, given back at once (a 10,000-trial first load peaked
    at 351-368 MB, 299-304 MB with both, about 5% more CPU)."""
    libc = _libc()
    return libc is not None and bool(libc.mallopt(M_ARENA_MAX, 1)) and bool(libc.mallopt(M_MMAP_THRESHOLD, LARGE))


def return_freed_memory() -> None:
    """Give back to the system what a cycle freed.  A full refresh decodes and stores every
    watched trial at once; glibc keeps the heap pages that burst freed (its high-water mark
    stayed the process's size for good), ``malloc_trim`` returns them."""
    gc.collect()
    trim = malloc_trim()
    if trim is not None:
        trim(0)
