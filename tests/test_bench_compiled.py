"""bench/compiled.py: a copy of the working tree with modules compiled by mypyc,
which imports them compiled and computes what the Python computes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import ROOT
from bench.compiled import build

COMPILED = ("streams/core/aggregate.py", "streams/core/sketch.py", "streams/core/window.py")
ROLL = """
import json
from streams.core import aggregate, sketch, window
from streams.core.aggregate import FRT

ring = window.RollingWindow(span_ms=300_000, step_ms=60_000)
for n in range(2_000):
    ring.advance(n * 1_000)
    ring.add(n * 1_000, FRT, n % 97 * 1_000, -1 if n % 10 == 0 else 1)
print(json.dumps({
    "compiled": [m.__file__.endswith(".so") for m in (aggregate, sketch, window)],
    "total": ring.total.to_wire(),
    "bounds": ring.bounds_ms(),
}))
"""


def _roll(tree: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", ROLL], cwd=tree, check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout)


def test_the_compiled_copy_computes_what_the_python_computes(tmp_path: Path) -> None:
    compiled, interpreted = _roll(build(tmp_path, COMPILED)), _roll(ROOT)
    assert compiled["compiled"] == [True, True, True]
    assert interpreted["compiled"] == [False, False, False]
    assert compiled["total"] == interpreted["total"]
    assert compiled["bounds"] == interpreted["bounds"] == [1_740_000, 2_040_000]
    assert not list((ROOT / "streams").rglob("*.so")), "nothing compiled in the working tree"


def test_a_module_mypyc_cannot_compile_stops_with_its_error(tmp_path: Path) -> None:
    bad = tmp_path / "bench" / "broken.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("x: int = 'not an int'\n")
    with pytest.raises(SystemExit, match=r"(?s)mypyc failed.*broken.py:1: error"):
        build(tmp_path, ("bench/broken.py",))
