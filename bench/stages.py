"""The stages' own CPU per event, without Kafka or Faust, and what an expiry
tick then costs.

The four stages wired in memory as the tests wire them (tests/pipeline/harness.py),
fed the throughput part's data set (batches of 100, a contact every 1 ms of event
time, 200,000 customers) on the event clock, with the worker's garbage-collector
settings. Faust and Kafka take most of a worker's CPU and move with the machine's
other load; this times the KPI code alone, so that a change to it can be weighed
against a commit in a minute, each tree in a fresh process, alternating. At
the end, one expiry tick over every partition, at the clock the data reached
(nothing is due yet): the event loop's time it takes, with the state held.


    .venv/bin/python -m bench.stages --against HEAD~1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.common import ROOT, export

BATCH = 100
MESSAGES_PER_SEND = 10
"""Input messages per ingest batch (1,000 events)."""
LIVE_EVERY = 10
"""Ingest batches between the live-queue reports (about once a second at 10,000 events/s)."""
WALL_MS = 2_000_000_000_000


def measure(count: int) -> dict[str, float]:
    """CPU microseconds per event of the stages over `count` events; then the
    expiry tick's milliseconds, and the interactions and customers held."""
    from bench.data import batched, events
    from streams.config import Settings
    from streams.pipeline.garbage import tune
    from tests.pipeline.harness import LocalPipeline

    settings = replace(Settings(), clock="event")
    topics = {name.removeprefix("cc."): name for name in settings.topics.inputs()}
    messages = [
        (topics[topic], value)
        for topic, _key, value in batched(events(count, 200_000, gap_ms=1), BATCH)
    ]
    pipe = LocalPipeline(settings)
    tune()
    start = time.process_time()
    for n, first in enumerate(range(0, len(messages), MESSAGES_PER_SEND)):
        pipe.send(messages[first : first + MESSAGES_PER_SEND], WALL_MS)
        if n % LIVE_EVERY == 0:
            pipe.report_live(WALL_MS)
    used = time.process_time() - start
    if pipe.stats.events.total() != count:
        raise SystemExit(f"the stages took {pipe.stats.events.total()} of {count} events")
    partitions = range(settings.internal_partitions)
    start = time.perf_counter()
    pipe.interactions.expire(partitions, WALL_MS)
    pipe.customers.expire(partitions, WALL_MS)
    tick = time.perf_counter() - start
    return {
        "us_per_event": used / count * 1e6,
        "tick_ms": tick * 1e3,
        "interactions": len(pipe.interactions.store.data),
        "customers": len(pipe.customers.store.data),
    }


def _timed(tree: Path, count: int) -> dict[str, float]:
    """One measurement in a fresh process that imports `streams` from `tree`: the
    working directory comes first on sys.path; `bench` comes from this checkout."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.stages", "--child", "--events", str(count)],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", metavar="REV", help="also time this commit's stages")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.events)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"working tree": ROOT}
        if args.against:
            # The harness is part of what is timed: `tests` comes from there too.
            export(args.against, ["streams", "tests"], Path(tmp))
            trees[args.against] = Path(tmp)
        figures: dict[str, list[float]] = {name: [] for name in trees}
        ticks: dict[str, list[float]] = {name: [] for name in trees}
        for round_ in range(args.rounds):
            order = list(trees.items())
            for name, tree in order if round_ % 2 == 0 else reversed(order):
                run = _timed(tree, args.events)
                figures[name].append(run["us_per_event"])
                ticks[name].append(run["tick_ms"])
                print(
                    f"round {round_ + 1}: {name:>14} {run['us_per_event']:6.1f} µs/event,"
                    f" expiry tick {run['tick_ms']:7.1f} ms with {run['interactions']:,}"
                    f" interactions and {run['customers']:,} customers held"
                )
    print(f"\nCPU per event of the stages, {args.events:,} events, {args.rounds} rounds:")
    for name, values in figures.items():
        print(
            f"  {name:>14}: median {statistics.median(values):.1f} µs"
            f" (min {min(values):.1f}, max {max(values):.1f});"
            f" expiry tick median {statistics.median(ticks[name]):.1f} ms"
        )
    if args.against:
        ratio = statistics.median(figures["working tree"]) / statistics.median(
            figures[args.against]
        )
        print(f"  working tree / {args.against}: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
