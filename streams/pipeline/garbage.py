"""Python's cyclic garbage collector, set for a worker that holds a large state.

With CPython's defaults (a young collection every 700 net allocations), the
stages' work triggers thousands of collections, and the older generations'
ones walk every object the worker holds: the interactions' events, the
customers' histories, the board's buckets, Faust's and aiokafka's objects.
Measured on the stages without Kafka (200,000-300,000 events), collections
took about 40 % of their CPU; with the thresholds below, under 10 %
(docs/benchmarks.md). The state itself is not cyclic garbage, so collecting
less often costs little memory: unreachable cycles (exceptions, finished
tasks) wait for up to YOUNG allocations instead of 700.
"""

from __future__ import annotations

import gc
from typing import Final

YOUNG: Final = 50_000
"""Net allocations between young collections (CPython: 700)."""
MIDDLE: Final = 20
"""Young collections between middle ones (CPython: 10)."""
OLD: Final = 10
"""Middle collections between full ones (CPython: 10); CPython also waits for
the objects moved to the old generation since its last full collection to be
a quarter of those already there."""


def tune() -> None:
    """Collect less often, and never walk what exists now (modules, the app)."""
    gc.set_threshold(YOUNG, MIDDLE, OLD)
    gc.freeze()
