"""Where a worker's time goes: a py-spy raw profile folded into the buckets
docs/benchmarks.md reports.

Record (the worker as a child of py-spy, so no ptrace rights are needed):
    CC_CONFIG=cfg.toml py-spy record -r 250 -f raw -o prof.txt -- \\
        python -m faust -A streams.pipeline.app --loop uvloop worker -l warn
Summarise:
    python -m bench.profile prof.txt

Two cuts of the same samples: by where the time goes (the buckets below), and
by whose code runs, ours or the libraries' (`owners`). The second answers what
the pipeline would cost with its KPI code free.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

BUCKETS = (
    ("logging: LogRecords built for debug calls (root logger at DEBUG)", ("Logger._log",)),
    ("streams: decode (contract)", ("decode_message (",)),
    ("streams: interactions stage", ("Interactions.process",)),
    ("streams: customers stage", ("Customers.process",)),
    ("streams: board stage", ("BoardStage.", "board (")),
    ("streams: ingest stage, besides decoding", ("Ingest.process",)),
    ("streams: /metrics exposition", ("generate_latest",)),
    ("streams: snapshot (Redis, cc.kpis, SLA)", ("publish_snapshot",)),
    (
        "Faust/aiokafka: producing (changelogs, internal topics)",
        ("publish_message", "send_changelog", "AIOKafkaProducer.send", "Sender.", "ProducerBuffer"),
    ),
    (
        "Faust/aiokafka: consuming (fetch, stream, acks)",
        ("Fetcher.", "Consumer._drain", "on_message", "Stream.", "_c_aiter", "Conductor"),
    ),
)
OTHER = "event loop and socket I/O (uvloop, native), timers, other Faust services"

LIBRARIES = re.compile(r"\((?:faust|aiokafka|mode|kafka|prometheus_client|redis|aiohttp)/")
OUTPUTS = ("streams/publish/", "report_live (", "publish_snapshot (", "Metrics.get (")
KPI = "streams: KPI code (decode, stages, commit bookkeeping)"
OUTPUT = "streams: outputs (/metrics, snapshot, live gauges)"
CALLED = "libraries called from the agents (sends, takes, changelog batches)"
OWN = "libraries on their own (fetching, drain loop, producer, timers)"
NO_FRAME = "no Python frame"
STDLIB = "standard library only (event loop, threads)"
STARTUP = "startup: imports"
OWNERS = (KPI, OUTPUT, CALLED, OWN, NO_FRAME, STDLIB, STARTUP)


def owner(stack: list[str]) -> str:
    """Whose code a sample is in: the innermost frame that is ours or a
    library's decides (standard-library frames belong to their caller)."""
    if stack == [""]:
        return NO_FRAME
    if any("_find_and_load" in frame for frame in stack):
        return STARTUP
    for frame in reversed(stack):
        if "streams/" in frame:
            return OUTPUT if any(m in f for f in stack for m in OUTPUTS) else KPI
        if LIBRARIES.search(frame):
            return CALLED if any("streams/" in f for f in stack) else OWN
    return STDLIB


def buckets(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Samples per bucket (a sample counts in the first bucket any frame
    matches) and per owner."""
    total, counts, owners = 0, Counter[str](), Counter[str]()
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        samples = int(n)
        total += samples
        label = next((name for name, keys in BUCKETS if any(k in stack for k in keys)), OTHER)
        counts[label] += samples
        owners[owner(stack.split(";"))] += samples
    return total, counts, owners


def main() -> int:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_file():
        print("usage: python -m bench.profile PY_SPY_RAW_FILE", file=sys.stderr)
        return 2
    try:
        total, counts, owners = buckets(Path(sys.argv[1]))
    except ValueError:
        print(f"{sys.argv[1]}: not a py-spy raw (folded) profile", file=sys.stderr)
        return 2
    print(f"| where | share of {total:,} samples |\n|---|---:|")
    for label, n in counts.most_common():
        print(f"| {label} | {n / total:.1%} |")
    running = total - owners[STARTUP]
    print(f"\n| whose code | share of {total:,} samples | share without startup |\n|---|---:|---:|")
    for label in OWNERS:
        share = "" if label == STARTUP else f"{owners[label] / running:.1%}"
        print(f"| {label} | {owners[label] / total:.1%} | {share} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
