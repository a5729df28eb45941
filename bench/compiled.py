"""The working tree's per-event code compiled with mypyc, to weigh what a
compiler buys without rewriting the Python (docs/benchmarks.md, "Compiled
with mypyc").

mypyc (part of mypy, `pip install -e '.[bench]'`) turns type-annotated
modules into C extensions, which Python imports ahead of the `.py` beside
them. A compiled module checks its annotations at run time: a value that
does not match them raises TypeError where the Python would have carried on.
The copy is built in a directory of its own, so that nothing compiled ever
shadows the working tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from bench.common import ROOT

MODULES = (
    "streams/contract/decode.py",
    "streams/contract/event.py",
    "streams/core/__init__.py",
    "streams/core/aggregate.py",
    "streams/core/board.py",
    "streams/core/clock.py",
    "streams/core/contribution.py",
    "streams/core/interaction.py",
    "streams/core/record.py",
    "streams/core/repeat.py",
    "streams/core/sketch.py",
    "streams/core/sla.py",
    "streams/core/window.py",
    "streams/pipeline/expiry.py",
    "streams/pipeline/outgoing.py",
    "streams/pipeline/stages.py",
    "streams/pipeline/wire.py",
)
"""What an event goes through in the stages: decoding, the KPI core and the
stages themselves. `streams/core/labels.py` stays Python: mypy 2.4's mypyc
stops with an internal error on it (a sum over a bytearray), and it runs once
per key, not per event."""
COPIED = ("streams", "bench")
"""The packages copied: `bench` too, so that its own modules can be compiled
(bench.least_work) and import each other from the copy."""


def build(into: Path, modules: Iterable[str] = MODULES) -> Path:
    """Copy the working tree's packages into `into` and compile `modules`
    (paths relative to the root) there in place; return `into`."""
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        raise SystemExit("compiling with mypyc needs a C compiler (apt-get install gcc)")
    try:
        import mypyc  # noqa: F401
    except ImportError:
        raise SystemExit("compiling with mypyc needs mypy: pip install -e '.[bench]'") from None
    for package in COPIED:
        shutil.copytree(
            ROOT / package,
            into / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.so"),
            dirs_exist_ok=True,
        )
    command = [sys.executable, "-m", "mypyc", "--ignore-missing-imports"]
    command += ["--follow-imports=silent", *modules]
    done = subprocess.run(command, cwd=into, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise SystemExit(f"mypyc failed on the working tree:\n{tail}")
    return into
