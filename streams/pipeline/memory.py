"""Hand the C heap's free memory back to the operating system.

A worker working through a backlog (a replay, a restart behind its input)
holds far more than it does once caught up: the board keeps every bucket its
clock has not reached yet, a stage's batch of internal messages carries up to
200,000 events, their deltas and state writes. All of it is freed once the
worker has caught up, but glibc's malloc keeps freed memory in its heaps and
returns only what lies at the very top of one: after a backlog the process's
RSS stays near its peak (in the memory benchmark, 1.5 GiB of a 2.4 GiB RSS
was free heap memory after 500,000 events, 2.0 of 3.2 GiB after 2M).
`malloc_trim(0)` returns every free page of every heap, in about 0.1 s for
2 GiB free; it changes no object, only the process's footprint. On jemalloc
(streams.allocator, the default) it finds next to nothing: jemalloc hands its
free pages back by itself.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any


def _malloc_trim() -> Callable[[int], Any] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_trim = _malloc_trim()


def release_free_memory() -> bool:
    """Return the C heap's free pages to the OS; False if it cannot here."""
    if _trim is None:
        return False
    _trim(0)
    return True
