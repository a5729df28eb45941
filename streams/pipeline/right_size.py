"""Bytes a stage keeps past the call that made them, copied to their own size.

orjson (3.12 and later) returns `bytes` whose buffer is never shrunk to the
JSON's length: at least 4 KiB, and a larger document rounded up to a power of
two. A stage's state writes wait in memory until the stage commits, a board
bucket's few hundred bytes of JSON then holding 4 KiB or more; measured with
tracemalloc on the memory benchmark, those buffers were the largest part of a
worker's memory in flight (docs/benchmarks.md, "orjson's buffers"). A copy
costs a fraction of a microsecond and holds only the JSON.
"""

from __future__ import annotations


def right_sized(data: bytes) -> bytes:
    """`data`, in a buffer of its own length."""
    return bytes(memoryview(data))
