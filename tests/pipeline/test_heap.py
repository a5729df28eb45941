"""The heap gauges read jemalloc's own counters, in a real interpreter
started as `cc-kpi worker` starts one (streams.allocator); on Python's own
allocator there is nothing to read."""

from __future__ import annotations

import subprocess
import sys

import orjson

from streams.allocator import worker_environment
from tests.pipeline.jemalloc import needs_jemalloc

PROBE = """
import orjson
from streams.pipeline.heap import JemallocStats

stats = JemallocStats()
before = stats.read()
kept = [bytes(1000) for _ in range(100_000)]
after = stats.read()
readings = [None if h is None else [h.allocated, h.resident] for h in (before, after)]
print(orjson.dumps(readings).decode())
"""


def probe(env: dict[str, str]) -> list[list[int] | None]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, check=True, text=True
    )
    return orjson.loads(result.stdout)


@needs_jemalloc
def test_jemalloc_counts_the_live_bytes_and_the_resident_pages():
    env, warning = worker_environment({"PATH": "/usr/bin:/bin"}, "jemalloc")
    assert warning is None
    before, after = probe(env)
    assert before is not None and after is not None
    grown = after[0] - before[0]
    assert 100_000 * 1000 <= grown < 2 * 100_000 * 1000, grown
    assert after[1] >= after[0], "resident pages hold at least the live bytes"


def test_on_pythons_own_allocator_there_is_nothing_to_read():
    env, _ = worker_environment({"PATH": "/usr/bin:/bin"}, "pymalloc")
    assert probe(env) == [None, None]
