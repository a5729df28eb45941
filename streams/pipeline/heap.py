"""What the C heap holds, as jemalloc (streams.allocator) counts it.

A worker's RSS after a backlog says how much memory it keeps, not why: live
objects (its state) or pages the allocator has not handed back yet. jemalloc
counts both (`stats.allocated`, the bytes of live allocations; and
`stats.resident`, the pages it maps that are resident), so `/metrics` can
tell an SRE whether a growing worker holds more state or a fragmented heap,
and the memory benchmark the same (docs/benchmarks.md).
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Heap:
    allocated: int
    """Bytes in live allocations."""
    resident: int
    """Bytes in resident pages the allocator maps: live allocations, its own
    metadata, and free pages not handed back yet."""


class JemallocStats:
    """jemalloc's counters through `mallctl`; `read()` is None where the
    process does not run on jemalloc (pymalloc, or jemalloc not preloaded)."""

    def __init__(self) -> None:
        self._mallctl = _mallctl(ctypes.CDLL(None))

    def read(self) -> Heap | None:
        mallctl = self._mallctl
        if mallctl is None:
            return None
        # The counters are a snapshot taken at the last "epoch" write.
        epoch = ctypes.c_uint64(1)
        if mallctl(b"epoch", None, None, ctypes.byref(epoch), ctypes.sizeof(epoch)) != 0:
            return None
        allocated, resident = _size(mallctl, b"stats.allocated"), _size(mallctl, b"stats.resident")
        if allocated is None or resident is None:
            return None
        return Heap(allocated, resident)

    @contextmanager
    def thread_cache_off(self) -> Iterator[None]:
        """Within it, this thread's small allocations come straight from the
        heap's slabs, the oldest with a free region first, not from the
        regions the thread freed last, which its cache hands out again
        (streams.pipeline.compaction). Nothing happens off jemalloc."""
        mallctl = self._mallctl
        off, on = ctypes.c_bool(False), ctypes.c_bool(True)
        if mallctl is None or _set(mallctl, b"thread.tcache.enabled", off) != 0:
            yield
            return
        try:
            yield
        finally:
            _set(mallctl, b"thread.tcache.enabled", on)


def _set(mallctl: Any, name: bytes, value: ctypes.c_bool) -> int:
    return mallctl(name, None, None, ctypes.byref(value), ctypes.sizeof(value))


def _mallctl(library: Any) -> Any:
    try:
        mallctl = library.mallctl
    except AttributeError:
        return None
    mallctl.argtypes = [
        ctypes.c_char_p,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_size_t),
        ctypes.c_void_p,
        ctypes.c_size_t,
    ]
    mallctl.restype = ctypes.c_int
    return mallctl


def _size(mallctl: Any, name: bytes) -> int | None:
    value = ctypes.c_size_t()
    length = ctypes.c_size_t(ctypes.sizeof(value))
    if mallctl(name, ctypes.byref(value), ctypes.byref(length), None, 0) != 0:
        return None
    return value.value
