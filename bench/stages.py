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
`--mypyc` also times the working tree compiled with mypyc (bench/compiled.py).

    .venv/bin/python -m bench.stages --against HEAD~1
    .venv/bin/python -m bench.stages --mypyc

With `--memory`, the memory part's data instead (200,000 customers, a
contact every 2 s of event time, batches of 100) through the stages alone,
on jemalloc as a worker runs: the heap at each count of events, to tell the
growth of the stages' own state and heap from the rest of a worker's
(Faust, aiokafka, their buffers in a backlog).

    .venv/bin/python -m bench.stages --memory 2000000,10000000
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from bench.common import PAGE, ROOT, export, measured
from bench.compiled import build

BATCH = 100
MESSAGES_PER_SEND = 10
"""Input messages per ingest batch (1,000 events)."""
LIVE_EVERY = 10
"""Ingest batches between the live-queue reports (about once a second at 10,000 events/s)."""
WALL_MS = 2_000_000_000_000
TENTHS = 10
"""Parts of the run timed on their own: the CPU per event grows with the
state held (docs/benchmarks.md, "CPU per event and the state held")."""


def measure(count: int) -> dict[str, Any]:
    """CPU microseconds per event of the stages over `count` events, and in
    each tenth of them with the interactions then held; then the expiry tick's
    milliseconds, and the interactions and customers held."""
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
    start = tenth_start = time.process_time()
    tenth_events = 0
    sends = range(0, len(messages), MESSAGES_PER_SEND)
    tenths: list[dict[str, float]] = []
    for n, first in enumerate(sends):
        pipe.send(messages[first : first + MESSAGES_PER_SEND], WALL_MS)
        if n % LIVE_EVERY == 0:
            pipe.report_live(WALL_MS)
        if (n + 1) * TENTHS // len(sends) > len(tenths):
            now, done = time.process_time(), pipe.stats.events.total()
            cost = (now - tenth_start) / (done - tenth_events) * 1e6
            held = len(pipe.interactions.store.data)
            tenths.append({"events": done, "us_per_event": cost, "interactions": held})
            tenth_start, tenth_events = now, done
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
        "tenths": tenths,
    }


MEMORY_CUSTOMERS = 200_000
MEMORY_GAP_MS = 2_000
"""The memory part's defaults (bench/run.py)."""
EXPIRE_EVERY_S = 60.0
"""A worker's expiry interval (streams.pipeline.app, `expire`)."""
TICK_EVERY_S = 1.0
"""A worker's board snapshot interval and live reports, about."""
ARENAS_ALL = 4096
"""jemalloc's MALLCTL_ARENAS_ALL."""


def generate(count: int) -> None:
    """The memory part's messages on stdout, each as a topic length (1 byte),
    a value length (4 bytes), the topic and the value: made in a process of
    their own, so that the generator's memory is not read as the stages'."""
    from bench.data import batched, events

    out = sys.stdout.buffer
    for topic, _key, value in batched(events(count, MEMORY_CUSTOMERS, MEMORY_GAP_MS), BATCH):
        name = topic.encode()
        out.write(struct.pack("<BI", len(name), len(value)) + name + value)
    out.flush()


def _messages(stream: BinaryIO) -> Iterator[tuple[str, bytes]]:
    while head := stream.read(5):
        name_length, value_length = struct.unpack("<BI", head)
        yield stream.read(name_length).decode(), stream.read(value_length)


class _Unlogged:
    """A table whose changelog records are gone once sent: a worker's go to Kafka."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def send_changelog(self, *args: Any, **kwargs: Any) -> None:
        return None


def held(marks: list[int]) -> list[dict[str, float]]:
    """The stages fed the memory part's data in ingest batches, with a worker's
    expiry pass every minute, and its board ticks, live reports and state
    compaction steps every second; at each mark, after an expiry pass and
    jemalloc's purge of its free pages: the RSS, jemalloc's live and
    resident bytes, and the keys held. Run on jemalloc (`--memory` starts it so)."""
    from streams.config import Settings
    from streams.pipeline.compaction import PER_STEP, Compaction
    from streams.pipeline.garbage import tune
    from streams.pipeline.heap import JemallocStats
    from streams.pipeline.table_store import TableStore
    from tests.pipeline.harness import LocalPipeline

    heap = JemallocStats()
    if heap.read() is None:
        raise SystemExit("--memory runs on jemalloc: apt-get install libjemalloc2")
    mallctl = ctypes.CDLL(None).mallctl
    settings = replace(Settings(), clock="event")
    topics = {name.removeprefix("cc."): name for name in settings.topics.inputs()}
    pipe = LocalPipeline(settings)
    stages = (pipe.interactions, pipe.customers, pipe.board, pipe.sla)
    for stage in stages:
        stage.store = TableStore(_Unlogged())
    partitions = range(settings.internal_partitions)
    compactions = {stage: Compaction(PER_STEP) for stage in stages[:2]}

    def expire() -> None:
        pipe.interactions.expire(partitions, WALL_MS)
        pipe.customers.expire(partitions, WALL_MS)

    tune()
    generator = subprocess.Popen(
        [sys.executable, "-m", "bench.stages", "--generate", str(marks[-1])],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    assert generator.stdout is not None
    found: list[dict[str, float]] = []
    pending, done = marks[:], 0
    batch: list[tuple[str, bytes]] = []
    expired = ticked = time.monotonic()
    for topic, value in _messages(generator.stdout):
        batch.append((topics[topic], value))
        done += BATCH
        if len(batch) == MESSAGES_PER_SEND or done >= pending[0]:
            pipe.send(batch, WALL_MS)
            batch = []
            for stage in stages:
                stage.store.commit()
            now = time.monotonic()
            if now - ticked >= TICK_EVERY_S:
                pipe.report_live(WALL_MS)
                pipe.board.tick(WALL_MS)
                with heap.thread_cache_off():
                    for stage, compaction in compactions.items():
                        compaction.step(stage.store.table.data)
                ticked = now
            if now - expired >= EXPIRE_EVERY_S:
                expire()
                expired = now
        if done >= pending[0]:
            pending.pop(0)
            expire()
            for stage in stages:
                stage.store.commit()
            mallctl(b"arena.%d.purge" % ARENAS_ALL, None, None, None, 0)
            state = heap.read()
            assert state is not None
            with open("/proc/self/statm") as statm:
                rss = int(statm.read().split()[1]) * PAGE
            found.append(
                {
                    "events": done,
                    "rss": rss,
                    "allocated": state.allocated,
                    "resident": state.resident,
                    "interactions": len(pipe.interactions.store.table.data),
                    "customers": len(pipe.customers.store.table.data),
                }
            )
            print(f"  {done:,} events: RSS {rss / 2**20:.0f} MiB", file=sys.stderr, flush=True)
            if not pending:
                break
    generator.kill()
    generator.wait()
    return found


def _memory(marks: list[int]) -> int:
    from streams.allocator import worker_environment

    env, warning = worker_environment({**os.environ, "PYTHONPATH": str(ROOT)}, "jemalloc")
    if warning:
        raise SystemExit(warning)
    done = subprocess.run(
        [sys.executable, "-m", "bench.stages", "--child-memory", ",".join(map(str, marks))],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    found = json.loads(done.stdout)
    print(
        "\nThe stages alone on the memory part's data (MiB; after an expiry pass and a purge):",
        flush=True,
    )
    print("  events      RSS   live  resident  interactions  customers")
    for row in found:
        print(
            f"  {row['events']:>10,} {row['rss'] / 2**20:6.0f} {row['allocated'] / 2**20:6.0f}"
            f" {row['resident'] / 2**20:9.0f} {row['interactions']:13,} {row['customers']:10,}"
        )
    first, last = found[0], found[-1]
    print(
        f"  RSS at {last['events']:,} / at {first['events']:,} events:"
        f" {last['rss'] / first['rss']:.3f}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", metavar="REV", help="also time this commit's stages")
    parser.add_argument(
        "--mypyc",
        action="store_true",
        help="also time the working tree's stages compiled with mypyc (bench/compiled.py)",
    )
    parser.add_argument(
        "--memory",
        metavar="COUNTS",
        type=lambda text: sorted(int(n) for n in text.split(",")),
        help="instead, the stages' heap at these counts of events (e.g. 2000000,10000000)",
    )
    parser.add_argument("--child-memory", help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate:
        generate(args.generate)
        return 0
    if args.child_memory:
        print(json.dumps(held([int(n) for n in args.child_memory.split(",")])))
        return 0
    if args.memory:
        return _memory(args.memory)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"working tree": ROOT}
        if args.against:
            # The harness is part of what is timed: `tests` comes from there too.
            export(args.against, ["streams", "tests"], Path(tmp))
            trees[args.against] = Path(tmp)
        if args.mypyc:
            trees["mypyc"] = build(Path(tmp) / "mypyc")
        figures: dict[str, list[float]] = {name: [] for name in trees}
        ticks: dict[str, list[float]] = {name: [] for name in trees}
        by_tenth: list[list[dict[str, float]]] = []
        for round_ in range(args.rounds):
            order = list(trees.items())
            for name, tree in order if round_ % 2 == 0 else reversed(order):
                run = measured("bench.stages", tree, args.events)
                figures[name].append(run["us_per_event"])
                ticks[name].append(run["tick_ms"])
                if name == "working tree":
                    by_tenth.append(run["tenths"])
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
    print("\nThe working tree's CPU per event by the state held (medians of the rounds):")
    print("      events   µs/event  interactions held")
    for tenth in zip(*by_tenth, strict=True):
        cost = statistics.median(t["us_per_event"] for t in tenth)
        print(f"  {tenth[0]['events']:>10,} {cost:10.1f} {tenth[0]['interactions']:18,}")
    working = statistics.median(figures["working tree"])
    for name in [name for name in trees if name != "working tree"]:
        print(f"  working tree / {name}: {working / statistics.median(figures[name]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
