"""The memory allocator a worker starts with: jemalloc for every object.

CPython's own small-object allocator (pymalloc) takes memory in 1 MiB arenas
and gives an arena back only when every object in it is gone. A backlog (a
replay, a restart behind its input) takes far more than the worker holds once
caught up, and the state that stays is spread over almost every arena the peak
took: after a replay the worker kept its highest peak for good (in the memory
benchmark, 460 MB of live objects in 1,016 arenas, and an RSS 16 % higher
after 10M events than after 2M for the same state). With `PYTHONMALLOC=malloc`
every object comes from the C allocator, which hands free pages back: glibc's
at a quarter of the throughput on batches, jemalloc's at about 8 %, for an
RSS 5.6 % higher after 10M events than after 2M (docs/benchmarks.md, "The
allocator").

Both must be in the environment before the interpreter starts (jemalloc is
loaded with LD_PRELOAD), so `cc-kpi worker` and `cc-kpi run` set them for the
Faust process they start.
"""

from __future__ import annotations

import ctypes.util
from collections.abc import Callable, Mapping

ALLOCATORS = ("jemalloc", "pymalloc")
"""`pipeline.allocator`: jemalloc (the default), or CPython's own."""


def worker_environment(
    environ: Mapping[str, str],
    allocator: str,
    find: Callable[[str], str | None] = ctypes.util.find_library,
) -> tuple[dict[str, str], str | None]:
    """The environment of a worker started from `environ`, and a warning when
    jemalloc is asked for but not installed (the worker then runs on
    pymalloc). A PYTHONMALLOC of the caller's own is left as it is."""
    env = dict(environ)
    if allocator != "jemalloc":
        return env, None
    library = find("jemalloc")
    if library is None:
        return env, (
            "libjemalloc not found (Debian: apt-get install libjemalloc2); "
            "the worker runs on Python's own allocator, and keeps a backlog's peak memory"
        )
    preload = env.get("LD_PRELOAD", "").split()
    if not any("jemalloc" in entry for entry in preload):
        env["LD_PRELOAD"] = " ".join([library, *preload])
    env.setdefault("PYTHONMALLOC", "malloc")
    return env, None
