"""The four stages of the pipeline, free of Faust so they can be tested alone.

    input topics --ingest--> by-interaction --interactions--> kpi-deltas --board--> outputs
                                                  \\--> by-customer --customers--/

* ingest: decode and validate, dead-letter what is bad, drop what is too late,
  and re-key every event by interaction (producers may key however they like).
* interactions: one interaction's events in one place; dedup by event_id;
  recompute the interaction's contributions and send on only the change; send
  the contact's facts on to the customer stage; report the live queue.
* customers: one customer's contacts in one place; repeat contacts and FCR.
* board: keyed by channel, so one worker holds every queue of a channel: the
  windows, roll-ups, records, SLA state. Every record has exactly one author.

Each stage reads and writes its state through a `Store` (a Faust table in the
app, a dict in tests) and returns what it wants sent in an `Outbox`.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from streams.config import Settings
from streams.contract.decode import Decoded, Limits, Rejection, decode_message
from streams.contract.event import STARTED, SURVEY, Event
from streams.core import interaction, repeat, sla
from streams.core.aggregate import Aggregate
from streams.core.board import Board, key_of_record
from streams.core.clock import Watermark
from streams.core.contribution import Contribution, Key, difference
from streams.core.labels import LabelCap
from streams.core.record import Live
from streams.pipeline.wire import (
    event_from_wire,
    event_to_wire,
    facts_from_wire,
    facts_to_wire,
    partition_for,
)


class Store(Protocol):
    """A partitioned key-value state; writes are remembered per partition."""

    def get(self, key: str) -> Any: ...

    def put(self, partition: int, key: str, value: Any, wire: bytes) -> None: ...

    def delete(self, partition: int, key: str) -> None: ...

    def scan(self) -> Iterable[str]:
        """Every key held (a snapshot, safe to write while iterating)."""
        ...


@dataclass(slots=True)
class DeadLetter:
    raw: bytes
    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    index: int | None


@dataclass(slots=True)
class Outbox:
    """Messages a stage wants sent: partition -> list of payload items."""

    interactions: dict[int, list[Any]] = field(default_factory=lambda: defaultdict(list))
    customers: dict[int, list[Any]] = field(default_factory=lambda: defaultdict(list))
    deltas: dict[int, list[Any]] = field(default_factory=lambda: defaultdict(list))
    deadletters: list[DeadLetter] = field(default_factory=list)
    watermark: int | None = None
    """Event clock to pass downstream: the lowest of the partitions that fed it."""

    def clocked(self, watermark: int | None) -> None:
        if watermark is not None and (self.watermark is None or watermark < self.watermark):
            self.watermark = watermark


class PartitionClocks:
    """The event clock of each partition of a stage: the highest watermark that
    arrived on it. Per partition, because one partition may run far ahead of
    another that still holds older events."""

    def __init__(self) -> None:
        self.clocks: dict[int, int] = {}

    def advance(self, partition: int, watermark: int | None) -> int | None:
        current = self.clocks.get(partition)
        if watermark is not None and (current is None or watermark > current):
            self.clocks[partition] = current = watermark
        return current

    def get(self, partition: int) -> int | None:
        return self.clocks.get(partition)


@dataclass(slots=True)
class Stats:
    """Process-local counters, exported to Prometheus at scrape time."""

    events: Counter[str] = field(default_factory=Counter)
    deadletters: Counter[tuple[str, str]] = field(default_factory=Counter)
    late: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    unknown_interaction: Counter[str] = field(default_factory=Counter)
    expired: Counter[str] = field(default_factory=Counter)


# --- ingest -----------------------------------------------------------------


class Ingest:
    def __init__(self, settings: Settings, stats: Stats) -> None:
        self.settings = settings
        self.stats = stats
        self.channels = settings.topics.inputs()
        self.limits = Limits(
            max_event_bytes=settings.max_event_bytes,
            max_message_bytes=settings.max_message_bytes,
            max_batch_events=settings.max_batch_events,
        )
        self.watermark = Watermark(settings.idle_timeout_ms)
        self.partitions = settings.internal_partitions

    def clock(self, wall_ms: int) -> int | None:
        if self.settings.clock == "wall":
            return wall_ms
        return self.watermark.value(wall_ms)

    def process(
        self, messages: Iterable[tuple[str, int, int, bytes | None]], wall_ms: int, out: Outbox
    ) -> None:
        """(topic, partition, offset, value) messages -> events keyed by interaction."""
        clock = self.clock(wall_ms)
        too_old = None if clock is None else clock - self.settings.lateness_ms
        stats = self.stats
        for topic, partition, offset, raw in messages:
            decoded: Decoded = decode_message(raw, self.channels.get(topic), self.limits)
            if decoded.rejections:
                for rejection in decoded.rejections:
                    stats.deadletters[(topic, rejection.reason)] += 1
                out.deadletters.extend(
                    _dead_letters(raw, decoded.rejections, topic, partition, offset)
                )
            source = (topic, partition)
            self.watermark.touch(source, wall_ms)
            for event in decoded.events:
                if too_old is not None and event.ts < too_old:
                    stats.late[topic] += 1
                    continue
                stats.events[topic] += 1
                self.watermark.observe(source, event.ts, wall_ms)
                target = partition_for(event.interaction_id, self.partitions)
                out.interactions[target].append(event_to_wire(event))

    def progress(self, wall_ms: int) -> list[list[Any]]:
        """Per input partition: [topic, partition, latest event ts, ms since it
        last delivered]: what the board needs for the event-time watermark."""
        report = []
        for (topic, partition), (ts, last) in self.watermark.sources().items():
            report.append([topic, partition, ts, wall_ms - last])
        return report

    def forget(self, topic: str, partition: int) -> None:
        self.watermark.forget((topic, partition))


def _dead_letters(
    raw: bytes | None, rejections: list[Rejection], topic: str, partition: int, offset: int
) -> list[DeadLetter]:
    """One dead letter per rejection: the message verbatim, or a bad element of
    a batch on its own, re-encoded. A batch is parsed once, however many of its
    elements are bad (an indexed rejection means the decoder parsed an array)."""
    message = raw or b""
    batch: list[Any] | None = None
    letters = []
    for rejection in rejections:
        index = rejection.index
        payload = message
        if index is not None:
            if batch is None:
                batch = orjson.loads(message)
            try:
                payload = orjson.dumps(batch[index])
            except orjson.JSONEncodeError:  # deeper than the 254 levels orjson writes
                payload = _array_elements(message)[index]
        reason, detail = rejection.reason, rejection.detail
        letters.append(DeadLetter(payload, reason, detail, topic, partition, offset, index))
    return letters


# A JSON string, or a bracket or comma outside strings.
_JSON_MARKS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', re.DOTALL)


def _array_elements(raw: bytes) -> list[bytes]:
    """The elements of a valid JSON array, as they are in its bytes."""
    elements = []
    depth = 0
    start = raw.index(b"[") + 1
    for mark in _JSON_MARKS.finditer(raw, start):
        token = mark.group()
        if token in (b"[", b"{"):
            depth += 1
        elif depth and token in (b"]", b"}"):
            depth -= 1
        elif not depth and token in (b",", b"]"):
            elements.append(raw[start : mark.start()].strip())
            start = mark.end()
            if token == b"]":
                break
    return elements


# --- interactions -----------------------------------------------------------


class Interactions:
    """Interaction lifecycles; state: interaction_id -> its events (ordered)."""

    def __init__(self, settings: Settings, store: Store, stats: Stats) -> None:
        self.settings = settings
        self.store = store
        self.stats = stats
        self.rules = interaction.Rules(settings.short_abandon_ms, settings.sla)
        self.partitions = settings.internal_partitions
        self.waiting: dict[int, dict[str, tuple[Key, int]]] = {}
        self.clocks = PartitionClocks()

    def clock(self, partition: int, wall_ms: int) -> int | None:
        return wall_ms if self.settings.clock == "wall" else self.clocks.get(partition)

    def events_of(self, iid: str) -> list[Event] | None:
        value = self.store.get(iid)
        if value is None or isinstance(value, list):
            return value
        return [event_from_wire(w) for w in orjson.loads(value)]

    def adopt(self, partition: int) -> None:
        """Rebuild the live-queue index of a partition from its recovered state."""
        index: dict[str, tuple[Key, int]] = {}
        for iid in self.store.scan():
            if partition_for(iid, self.partitions) != partition:
                continue
            events = self.events_of(iid)
            if events and (waiting := interaction.waiting_since(events)) is not None:
                index[iid] = waiting
        self.waiting[partition] = index

    def release(self, partition: int) -> None:
        self.waiting.pop(partition, None)

    def process(self, partition: int, payload: dict[str, Any], out: Outbox) -> None:
        out.clocked(self.clocks.advance(partition, payload.get("wm")))
        changed: dict[str, list[Event]] = {}
        before: dict[str, Counter[Contribution]] = {}
        facts_before: dict[str, interaction.ContactFacts | None] = {}
        stats = self.stats
        for wire in payload["e"]:
            event = event_from_wire(wire)
            iid = event.interaction_id
            events = changed.get(iid)
            if events is None:
                events = self.events_of(iid) or []
                before[iid] = interaction.contributions(events, self.rules)
                facts_before[iid] = interaction.contact_facts(iid, events)
            if any(e.event_id == event.event_id for e in events):
                stats.duplicates[event.channel or "unknown"] += 1
                continue
            if event.type not in (STARTED, SURVEY) and not any(e.type == STARTED for e in events):
                stats.unknown_interaction[event.channel or "unknown"] += 1
            events = interaction.ordered([*events, event])
            changed[iid] = events
        waiting = self.waiting.setdefault(partition, {})
        for iid, events in changed.items():
            delta = difference(interaction.contributions(events, self.rules), before[iid])
            _route_deltas(delta, self.partitions, out)
            facts = interaction.contact_facts(iid, events)
            if facts is not None and facts != facts_before[iid]:
                target = partition_for(facts.customer_id, self.partitions)
                out.customers[target].append(facts_to_wire(facts))
            now_waiting = interaction.waiting_since(events)
            if now_waiting is None:
                waiting.pop(iid, None)
            else:
                waiting[iid] = now_waiting
            wire = orjson.dumps([event_to_wire(e) for e in events])
            self.store.put(partition, iid, events, wire)

    def live(self, partition: int, wall_ms: int) -> dict[Key, Live]:
        """Queue now, oldest start and at-risk count per key, at the partition's clock."""
        clock = self.clock(partition, wall_ms)
        gauges: dict[Key, list[int]] = {}
        for key, start in self.waiting.get(partition, {}).values():
            g = gauges.get(key)
            if g is None:
                g = gauges[key] = [0, start, 0]
            g[0] += 1
            g[1] = min(g[1], start)
            target = self.settings.sla.targets(*key).frt_seconds
            at_risk_after = None if target is None else target * 1000 * self.settings.at_risk_share
            if clock is not None and at_risk_after is not None and clock - start > at_risk_after:
                g[2] += 1
        return {key: Live(g[0], g[1], g[2]) for key, g in gauges.items()}

    def expire(self, partition: int, wall_ms: int) -> int:
        """Forget interactions past their horizon; returns how many."""
        clock = self.clock(partition, wall_ms)
        if clock is None:
            return 0
        gone = 0
        for iid in self.store.scan():
            if partition_for(iid, self.partitions) != partition:
                continue
            events = self.events_of(iid)
            if not events:
                continue
            latest, closed = interaction.last_activity(events)
            keep = self.settings.closed_retention_ms if closed else self.settings.open_ttl_ms
            if latest < clock - keep:
                self.store.delete(partition, iid)
                self.waiting.get(partition, {}).pop(iid, None)
                gone += 1
        self.stats.expired["interaction"] += gone
        return gone


def _route_deltas(delta: Counter[Contribution], partitions: int, out: Outbox) -> None:
    for (channel, queue, network, ts, code, value), weight in delta.items():
        out.deltas[partition_for(channel, partitions)].append(
            [channel, queue, network, ts, code, value, weight]
        )


# --- customers --------------------------------------------------------------


class Customers:
    """Repeat contacts and FCR; state: customer_id -> recent contacts."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.partitions = settings.internal_partitions
        self.clocks = PartitionClocks()

    def history(self, customer: str) -> repeat.CustomerHistory:
        value = self.store.get(customer)
        if value is None:
            return repeat.CustomerHistory()
        if isinstance(value, repeat.CustomerHistory):
            return value
        data = orjson.loads(value)
        contacts = {f.interaction_id: f for f in map(facts_from_wire, data["c"])}
        return repeat.CustomerHistory(contacts, dict(data["f"]))

    def _save(self, partition: int, customer: str, history: repeat.CustomerHistory) -> None:
        if not history.contacts:
            self.store.delete(partition, customer)
            return
        wire = orjson.dumps(
            {"c": [facts_to_wire(f) for f in history.contacts.values()], "f": history.frozen}
        )
        self.store.put(partition, customer, history, wire)

    def clock(self, partition: int, wall_ms: int) -> int | None:
        return wall_ms if self.settings.clock == "wall" else self.clocks.get(partition)

    def process(self, partition: int, payload: dict[str, Any], out: Outbox, wall_ms: int) -> None:
        out.clocked(self.clocks.advance(partition, payload.get("wm")))
        clock = self.clock(partition, wall_ms)
        touched: dict[str, repeat.CustomerHistory] = {}
        window = self.settings.repeat_window_ms
        for wire in payload["f"]:
            facts = facts_from_wire(wire)
            history = touched.get(facts.customer_id)
            if history is None:
                history = touched[facts.customer_id] = self.history(facts.customer_id)
                if clock is not None:
                    repeat.settle(
                        history, clock, self.settings.lateness_ms, window, self._keep_ms()
                    )
            _route_deltas(repeat.update(history, facts, window), self.partitions, out)
        for customer, history in touched.items():
            self._save(partition, customer, history)

    def _keep_ms(self) -> int:
        return max(self.settings.closed_retention_ms, self.settings.open_ttl_ms)

    def expire(self, partition: int, wall_ms: int) -> int:
        clock = self.clock(partition, wall_ms)
        if clock is None:
            return 0
        gone = 0
        for customer in self.store.scan():
            if partition_for(customer, self.partitions) != partition:
                continue
            history = self.history(customer)
            count = len(history.contacts)
            repeat.settle(
                history,
                clock,
                self.settings.lateness_ms,
                self.settings.repeat_window_ms,
                self._keep_ms(),
            )
            if len(history.contacts) != count:
                gone += count - len(history.contacts)
                self._save(partition, customer, history)
        return gone


# --- board ------------------------------------------------------------------


def bucket_store_key(key: Key, ring_id: int, index: int) -> str:
    return f"{key[0]}|{key[1]}|{key[2]}|{ring_id}|{index}"


def settled_store_key(key: Key) -> str:
    return f"{key[0]}|{key[1]}|{key[2]}|settled"


class BoardStage:
    """Applies contribution deltas to the board and keeps its changelog current."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.partitions = settings.internal_partitions
        self.board = Board(
            settings.windows_ms, settings.window_buckets, settings.lateness_ms, settings.sla
        )
        self.labels = {span: settings.window_label(span) for span in settings.windows_ms}
        self.cap = LabelCap(settings.labels, settings.sla)
        self.watermark = Watermark(settings.idle_timeout_ms)
        self.owned: set[int] = set()

    def partition_of(self, channel: str) -> int:
        return partition_for(channel, self.partitions)

    def label(self, key: Key) -> Key:
        """The key a contribution or gauge of `key` counts under: queue and network
        names beyond the [labels] caps fold into the `other` bucket."""
        return self.cap.key(key)

    def adopt(self, partition: int) -> None:
        """Rebuild the board's keys of a partition from the recovered changelog."""
        self.owned.add(partition)
        buckets: dict[Key, list[tuple[int, int, Aggregate]]] = defaultdict(list)
        settled: dict[Key, Aggregate] = {}
        for store_key in self.store.scan():
            channel, queue, network, *rest = store_key.split("|")
            if self.partition_of(channel) != partition:
                continue
            value = self.store.get(store_key)
            agg = (
                value if isinstance(value, Aggregate) else Aggregate.from_wire(orjson.loads(value))
            )
            key = (channel, queue, network)
            if rest == ["settled"]:
                settled[key] = agg
            else:
                buckets[key].append((int(rest[0]), int(rest[1]), agg))
        for key in set(buckets) | set(settled):
            self.board.restore_key(key, buckets.get(key, ()), settled.get(key))
        # The recovered keys are the names admitted before: same decisions as then.
        self.cap.admit_existing(
            set(buckets) | set(settled),
            [c for c in self.cap.channels() if self.partition_of(c) == partition],
        )

    def release(self, partition: int) -> None:
        self.owned.discard(partition)
        for channel in {key[0] for key in self.board.keys}:
            if self.partition_of(channel) == partition:
                self.board.forget_channel(channel)
        for source in [s for s in self.board.live if s[1] == partition]:
            del self.board.live[source]

    def process(self, payload: dict[str, Any], wall_ms: int) -> None:
        if "d" in payload:
            apply, label = self.board.apply, self.label
            for channel, queue, network, ts, code, value, weight in payload["d"]:
                apply(label((channel, queue, network)), ts, code, value, weight)
        elif "live" in payload:
            gauges: dict[Key, Live] = {}
            for c, q, n, count, oldest, at_risk in payload["g"]:
                key, live = self.label((c, q, n)), Live(count, oldest, at_risk)
                # Names folded into one bucket add up.
                gauges[key] = gauges[key].plus(live) if key in gauges else live
            self.board.set_live((payload["live"], payload["to"]), gauges)
        elif "progress" in payload:
            for topic, partition, ts, idle_ms in payload["progress"]:
                self.watermark.report((topic, partition), ts, wall_ms - idle_ms)

    def clock(self, wall_ms: int) -> int | None:
        if self.settings.clock == "wall":
            return wall_ms
        return self.watermark.value(wall_ms)

    def tick(self, wall_ms: int) -> int | None:
        clock = self.clock(wall_ms)
        if clock is not None:
            self.board.advance(clock)
        return clock

    def flush(self) -> None:
        """Write every changed bucket and settled total to the store."""

        def part(key: Key) -> int:
            return self.partition_of(key[0])

        changed, removed, settled = self.board.take_changes()
        for bucket_id in removed:
            key, ring_id, index = bucket_id
            self.store.delete(part(key), bucket_store_key(key, ring_id, index))
        for bucket_id in changed:
            key, ring_id, index = bucket_id
            agg = self.board.bucket(bucket_id)
            self.store.put(
                part(key),
                bucket_store_key(key, ring_id, index),
                agg,
                orjson.dumps(agg.to_wire()),
            )
        for key in settled:
            agg = self.board.keys[key].settled
            self.store.put(part(key), settled_store_key(key), agg, orjson.dumps(agg.to_wire()))


class SlaTracker:
    """Breach/recovery state per (record key, KPI), kept in its own table so a
    restarted worker does not announce a breach twice."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.partitions = settings.internal_partitions
        self.alert_window = settings.window_label(settings.alert_window_ms)
        self.states: dict[str, dict[str, str]] = {}
        self.latest: dict[str, dict[str, Any]] = {}

    def adopt(self, partition: int) -> None:
        for store_key in self.store.scan():
            record_key, _, kpi = store_key.rpartition("|")
            if partition_for(record_key.split("|", 1)[0], self.partitions) != partition:
                continue
            value = self.store.get(store_key)
            state = value if isinstance(value, dict) else orjson.loads(value)
            self.states.setdefault(record_key, {})[kpi] = state["state"]
            if "event" in state:
                self.latest[store_key] = state["event"]

    def release(self, partition: int) -> None:
        for record_key in list(self.states):
            if partition_for(record_key.split("|", 1)[0], self.partitions) == partition:
                kpis = self.states.pop(record_key)
                for kpi in kpis:
                    self.latest.pop(f"{record_key}|{kpi}", None)

    def evaluate(self, records: Iterable[dict[str, Any]], at: str) -> list[dict[str, Any]]:
        events = []
        for record in records:
            if record["window"] != self.alert_window:
                continue
            record_key = key_of_record(record)
            states = self.states.setdefault(record_key, {})
            before = dict(states)
            for event in sla.evaluate(record, states, self.settings.min_contacts, at):
                events.append(event)
                self.latest[f"{record_key}|{event['kpi']}"] = event
            partition = partition_for(record["channel"], self.partitions)
            for kpi, state in states.items():
                if before.get(kpi) != state:
                    store_key = f"{record_key}|{kpi}"
                    value: dict[str, Any] = {"state": state}
                    if store_key in self.latest:
                        value["event"] = self.latest[store_key]
                    self.store.put(partition, store_key, value, orjson.dumps(value))
        return events

    def breached(self) -> Iterable[tuple[str, str, bool]]:
        """(record key, kpi, in breach) for every state known."""
        for record_key, states in self.states.items():
            for kpi, state in states.items():
                yield record_key, kpi, state == sla.BREACH
