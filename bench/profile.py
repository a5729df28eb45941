"""Where a worker's time goes: a py-spy raw profile folded into the buckets
docs/benchmarks.md reports.

Record (the worker as a child of py-spy, so no ptrace rights are needed):
    CC_CONFIG=cfg.toml py-spy record -r 250 -f raw -o prof.txt -- \\
        python -m faust -A streams.pipeline.app --loop uvloop worker -l warn
Summarise:
    python -m bench.profile prof.txt
"""

from __future__ import annotations

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


def buckets(path: Path) -> tuple[int, Counter[str]]:
    """Samples per bucket; a sample counts in the first bucket any frame matches."""
    total, counts = 0, Counter[str]()
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        samples = int(n)
        total += samples
        label = next((name for name, keys in BUCKETS if any(k in stack for k in keys)), OTHER)
        counts[label] += samples
    return total, counts


def main() -> int:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_file():
        print("usage: python -m bench.profile PY_SPY_RAW_FILE", file=sys.stderr)
        return 2
    try:
        total, counts = buckets(Path(sys.argv[1]))
    except ValueError:
        print(f"{sys.argv[1]}: not a py-spy raw (folded) profile", file=sys.stderr)
        return 2
    print(f"| where | share of {total:,} samples |\n|---|---:|")
    for label, n in counts.most_common():
        print(f"| {label} | {n / total:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
