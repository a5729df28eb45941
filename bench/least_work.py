"""A lower bound on the CPU per event of any pure-Python KPI core, next to the
production stages' own, on the same data in the same run.

Issue 5 asks for 100,000 events/s from one worker on batches of 100: 10 µs of
CPU per event for everything. `LeastWork` is the least a core can do per event
and still count what kpis.md counts, on input that comes in event-time order
(the throughput part's batches keep each topic's order; a few repeats across
channels come out wrong on them, at the same work per event): decode a
batch, check the envelope, drop duplicates, keep each interaction's few
facts, add each fact to a per-minute bucket of its channel, queue and
network, look a customer's last contact up for repeat and first-contact
resolution, and encode each changed key once per ingest batch, as a state
record would be. It leaves out all the rest that the
pipeline does: late and out-of-order events changing the KPIs as if in order,
FRT percentiles, windows, snapshots, `/metrics`, Redis, the SLA, expiry,
partitioning, Faust and Kafka. Whatever it costs, a real core costs more.
`tests/test_bench_least_work.py` checks that it counts what the naive
computation counts.

`--mypyc` also times both compiled with mypyc (bench/compiled.py).

    .venv/bin/python -m bench.least_work --events 200000 --rounds 3
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bench.common import ROOT, measured
from bench.compiled import MODULES, build
from streams.config import Settings, Topics
from streams.contract.event import EVENT_TYPES
from streams.core.aggregate import COUNTS

BATCH = 100
EVENTS_PER_COMMIT = 1_000
"""A state record per changed key per ingest batch (bench/stages.py's 10 messages)."""
DEFAULTS = Settings()
"""The pipeline's default definitions: the SLA targets, short abandons, the repeat window."""
CHANNEL_OF = {name.removeprefix("cc."): channel for name, channel in Topics().inputs().items()}
TYPES = frozenset(EVENT_TYPES)
SHORT_ABANDON_MS = DEFAULTS.short_abandon_ms
REPEAT_MS = DEFAULTS.repeat_window_ms
MINUTE_MS = 60_000
SUMMED = ("frt", "next_response", "handle", "resolution", "ces")
"""The naive computation's names for the summed facts (tests/naive.py)."""
NAMES = (*COUNTS, *SUMMED)
SLOT = {name: n for n, name in enumerate(NAMES)}
Key = tuple[str, str, str]
SURVEY_BANDS = (
    ("csat", "csat_answers", ((4, 5, "csat_satisfied"),)),
    ("nps", "nps_answers", ((9, 10, "nps_promoters"), (0, 6, "nps_detractors"))),
    ("ces", "ces_answers", ()),
)
"""Per score: its answers count, and the counts of the answers in each band."""


class Invalid(ValueError):
    """An event the contract rejects (it would be dead-lettered)."""


def _text(event: dict[str, Any], field: str) -> str:
    value = event.get(field)
    if type(value) is not str or not 0 < len(value) <= 128:
        raise Invalid(field)
    return value


def _ms(ts: Any) -> int:
    if type(ts) is int:
        return ts
    if type(ts) is str:
        try:
            return int(datetime.fromisoformat(ts).timestamp() * 1000)
        except ValueError:
            raise Invalid("ts") from None
    raise Invalid("ts")


class Contact:
    """What one interaction needs kept for the KPIs of its later events."""

    __slots__ = (
        "abandoned",
        "escalated",
        "key",
        "open",
        "repeat",
        "responded",
        "start",
        "transferred",
        "waiting_since",
    )

    def __init__(self, key: Key, start: int, repeat: bool) -> None:
        self.key = key
        self.start = start
        self.repeat = repeat
        self.responded = False
        self.abandoned = False
        self.waiting_since: int | None = None
        self.escalated = False
        self.transferred = False
        self.open = True

    def record(self) -> list[Any]:
        return [
            self.key,
            self.start,
            self.repeat,
            self.responded,
            self.abandoned,
            self.waiting_since,
            self.escalated,
            self.transferred,
            self.open,
        ]


class LeastWork:
    """The least work per event for kpis.md's counts, on input in event-time order."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.contacts: dict[str, Contact] = {}
        self.last_start: dict[tuple[str, str | None], int] = {}
        self.buckets: dict[tuple[Key, int], list[float]] = {}
        self.frt_target_ms: dict[Key, float] = {}
        self.dirty: set[str] = set()
        self.dirty_customers: set[tuple[str, str | None]] = set()
        self.invalid = 0
        self.unknown = 0
        """Events for an interaction whose start has not come (yet)."""
        self.records = 0

    def _add(self, key: Key, at: int, name: str, value: float = 1) -> None:
        minute = (key, at // MINUTE_MS)
        bucket = self.buckets.get(minute)
        if bucket is None:
            bucket = self.buckets[minute] = [0] * len(NAMES)
        bucket[SLOT[name]] += value

    def _frt_target_ms(self, key: Key) -> float:
        """The key's FRT target, looked up once per key (SlaTable builds it per call)."""
        target = self.frt_target_ms.get(key)
        if target is None:
            seconds = DEFAULTS.sla.targets(*key).frt_seconds
            target = self.frt_target_ms[key] = math.inf if seconds is None else seconds * 1000
        return target

    def take(self, topic: str, value: bytes) -> int:
        """One input message from `topic` (calls, ..., surveys): an event or a
        JSON array of them; returns how many it carried."""
        decoded = orjson.loads(value)
        found = decoded if type(decoded) is list else [decoded]
        channel = CHANNEL_OF.get(topic)
        for event in found:
            try:
                self._event(channel, event)
            except Invalid:
                self.invalid += 1
        return len(found)

    def _event(self, channel: str | None, event: dict[str, Any]) -> None:
        event_id = _text(event, "event_id")
        kind = event.get("type")
        if kind not in TYPES:
            raise Invalid("type")
        at = _ms(event.get("ts"))
        interaction = _text(event, "interaction_id")
        if channel is not None and event.get("channel", channel) != channel:
            raise Invalid("channel")
        if event_id in self.seen:
            return
        self.seen.add(event_id)
        contact = self.contacts.get(interaction)
        if kind == "contact.started":
            self._started(channel or "unknown", event, interaction, at)
        elif kind == "survey.answered":
            self._survey(event, contact, at)
        elif contact is not None:
            self._step(contact, kind, event, at)
            self.dirty.add(interaction)
        else:
            self.unknown += 1

    def _started(self, channel: str, event: dict[str, Any], interaction: str, at: int) -> None:
        queue = _text(event, "queue")
        customer = _text(event, "customer_id")
        network = (event.get("network") or "unknown") if channel == "social" else "-"
        reason = event.get("reason")
        key = (channel, queue, network)
        before = self.last_start.get((customer, reason))
        repeat = before is not None and 0 < at - before <= REPEAT_MS
        self.last_start[(customer, reason)] = at
        if reason is not None:
            self.last_start[(customer, None)] = at
        self.dirty_customers.add((customer, reason))
        self.contacts[interaction] = Contact(key, at, repeat)
        self.dirty.add(interaction)
        self._add(key, at, "started")
        if repeat:
            self._add(key, at, "repeat_contacts")

    def _step(self, contact: Contact, kind: str, event: dict[str, Any], at: int) -> None:
        key = contact.key
        if kind == "agent.responded":
            if not contact.responded and not contact.abandoned:
                contact.responded = True
                frt = max(0, at - contact.start)
                self._add(key, at, "answered")
                self._add(key, at, "frt", frt)
                if frt <= self._frt_target_ms(key):
                    self._add(key, at, "answered_within_target")
            elif contact.responded and contact.waiting_since is not None:
                self._add(key, at, "next_response", at - contact.waiting_since)
                contact.waiting_since = None
        elif kind == "customer.messaged":
            if contact.responded and contact.waiting_since is None:
                contact.waiting_since = at
        elif kind == "contact.abandoned":
            if not contact.responded and not contact.abandoned:
                contact.abandoned = True
                short = at - contact.start < SHORT_ABANDON_MS
                self._add(key, at, "short_abandoned" if short else "abandoned")
        elif kind == "contact.escalated":
            contact.escalated = True
        elif kind == "contact.transferred":
            contact.transferred = True
        elif kind == "contact.reopened":
            contact.open = True
            self._add(key, at, "reopened")
        elif kind == "contact.ended" and contact.open:
            self._ended(contact, event, at)

    def _ended(self, contact: Contact, event: dict[str, Any], at: int) -> None:
        resolved = event.get("resolved")
        if type(resolved) is not bool:
            raise Invalid("resolved")
        key = contact.key
        contact.open = False
        self._add(key, at, "ended")
        if contact.escalated:
            self._add(key, at, "escalated")
        if contact.transferred:
            self._add(key, at, "transferred")
        parts = [event.get(p) for p in ("talk_seconds", "hold_seconds", "wrap_seconds")]
        if any(p is not None for p in parts):
            self._add(key, at, "handle", sum(p for p in parts if p is not None))
        if resolved:
            self._add(key, at, "resolved")
            self._add(key, at, "resolution", at - contact.start)
            if not (contact.repeat or contact.escalated or contact.transferred):
                self._add(key, at, "resolved_first_contact")

    def _survey(self, event: dict[str, Any], contact: Contact | None, at: int) -> None:
        known = contact.key if contact is not None else None
        channel = event.get("channel") or (known[0] if known else "unknown")
        same = known is not None and known[0] == channel
        queue = event.get("queue") or (known[1] if known and same else "unknown")
        network = "-" if channel != "social" else (known[2] if known and same else "unknown")
        key = (channel, queue, network)
        for field, answers, bands in SURVEY_BANDS:
            score = event.get(field)
            if score is None:
                continue
            self._add(key, at, answers)
            for low, high, name in bands:
                if low <= score <= high:
                    self._add(key, at, name)
        if "ces" in event:
            self._add(key, at, "ces", event["ces"])

    def commit(self) -> list[tuple[str, bytes]]:
        """Every key changed since the last commit once, as its state record."""
        records = [
            (interaction, orjson.dumps(self.contacts[interaction].record()))
            for interaction in self.dirty
        ]
        records += [
            (f"{customer}|{reason}", orjson.dumps(self.last_start[(customer, reason)]))
            for customer, reason in self.dirty_customers
        ]
        self.records += len(records)
        self.dirty.clear()
        self.dirty_customers.clear()
        return records

    def totals(self) -> dict[Key, dict[str, float]]:
        """Each count and sum over all time, per key (what tests compare)."""
        found: dict[Key, dict[str, float]] = {}
        for (key, _minute), bucket in self.buckets.items():
            sums = found.setdefault(key, dict.fromkeys(NAMES, 0))
            for name, value in zip(NAMES, bucket, strict=True):
                sums[name] += value
        return found


def run(messages: Iterable[tuple[str, bytes]]) -> LeastWork:
    """Every message through `LeastWork`, committing every EVENTS_PER_COMMIT events."""
    core = LeastWork()
    per_commit = EVENTS_PER_COMMIT // BATCH
    for n, (topic, value) in enumerate(messages, start=1):
        core.take(topic, value)
        if n % per_commit == 0:
            core.commit()
    core.commit()
    return core


def measure(count: int) -> dict[str, float]:
    """CPU microseconds per event of `LeastWork` over `count` events of the throughput data."""
    from bench.data import batched, events
    from streams.pipeline.garbage import tune

    messages = [(topic, value) for topic, _key, value in batched(events(count, 200_000, 1), BATCH)]
    tune()
    start = time.process_time()
    core = run(messages)
    used = time.process_time() - start
    return {"us_per_event": used / count * 1e6, "records_per_event": core.records / count}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.least_work", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--mypyc",
        action="store_true",
        help="also time both compiled with mypyc (bench/compiled.py)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        return _compare(args.events, args.rounds, Path(tmp) / "mypyc" if args.mypyc else None)


def _compare(count: int, rounds: int, compiled: Path | None) -> int:
    modules = {"least work": ("bench.least_work", ROOT), "the stages": ("bench.stages", ROOT)}
    if compiled is not None:
        build(compiled, (*MODULES, "bench/least_work.py"))
        modules["least work, mypyc"] = ("bench.least_work", compiled)
        modules["the stages, mypyc"] = ("bench.stages", compiled)
    figures: dict[str, list[float]] = {name: [] for name in modules}
    records = 0.0
    for round_ in range(rounds):
        order = list(modules.items())
        for name, (module, tree) in order if round_ % 2 == 0 else reversed(order):
            found = measured(module, tree, count)
            figures[name].append(found["us_per_event"])
            records = found.get("records_per_event", records)
            print(f"round {round_ + 1}: {name:>17} {figures[name][-1]:6.1f} µs/event", flush=True)
    median = {name: statistics.median(values) for name, values in figures.items()}
    least = median["least work"]
    print(f"\nCPU per event, {count:,} events in batches of {BATCH}, {rounds} rounds:")
    for name, values in figures.items():
        print(f"  {name:>17}: median {median[name]:.1f} µs (min {min(values):.1f})")
    print(f"  the stages / least work: {median['the stages'] / least:.1f}")
    if compiled is not None:
        for name in ("least work", "the stages"):
            print(f"  {name}, mypyc / {name}: {median[f'{name}, mypyc'] / median[name]:.2f}")
    print(
        f"  least work's state records (each changed key once per {EVENTS_PER_COMMIT:,}"
        f" events): {records:.2f} per event"
    )
    print(
        f"  100,000 events/s leaves 10.0 µs per event for everything;"
        f" least work alone would allow {1e6 / least:,.0f} events/s"
        + (f", compiled {1e6 / median['least work, mypyc']:,.0f}" if compiled else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
