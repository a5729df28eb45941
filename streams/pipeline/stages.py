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

import logging
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import orjson

from streams.config import CHANNELS, UNKNOWN, Settings
from streams.contract.decode import Decoded, Limits, Rejection, decode_message
from streams.contract.event import STARTED, SURVEY, Event
from streams.core import interaction, repeat, sla
from streams.core.aggregate import Aggregate
from streams.core.board import Board, key_of_record
from streams.core.clock import SenderClocks, Watermark
from streams.core.contribution import Contributions, Key, difference
from streams.core.labels import LabelCap
from streams.core.record import Live
from streams.core.waiting import Waiting
from streams.pipeline.expiry import ExpiryIndex
from streams.pipeline.wire import (
    event_from_wire,
    event_to_wire,
    facts_from_wire,
    facts_to_wire,
    partition_for,
)

log = logging.getLogger(__name__)

PROCESSING_ERROR = "processing_error"
"""Dead-letter reason of a valid event the KPI code failed on (a bug, not bad input)."""


class Store(Protocol):
    """A partitioned key-value state; writes are remembered per partition."""

    def get(self, key: str) -> Any: ...

    def put(self, partition: int, key: str, value: Any, wire: bytes) -> None: ...

    def put_bytes(self, partition: int, key: str, wire: bytes) -> None:
        """Hold `wire` itself as the value, for state read too seldom to keep
        decoded: its objects would take several times the bytes, spread over
        the heap for as long as the key lives."""
        ...

    def delete(self, partition: int, key: str) -> None: ...

    def scan(self) -> Iterable[str]:
        """Every key held (a snapshot, safe to write while iterating)."""
        ...

    def commit(self, marks: dict[int, Any] | None = None) -> None:
        """Make the writes since the last commit durable. With `marks` (partition
        -> a JSON-able mark), each partition's writes and its mark become durable
        together or not at all (see `restore`)."""
        ...

    def restore(self, partition: int) -> Any:
        """Finish the last commit of a partition recovered from the changelog, if
        a crash cut it short, and return its mark (None if it never had one)."""
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
    redelivered: Counter[str] = field(default_factory=Counter)
    """Delta messages the board had applied already, by sending stage."""
    input_gaps: Counter[str] = field(default_factory=Counter)
    """Times a stage found messages of a partition missing, or unread at the
    end of an input partition, and read them from the log
    (streams.pipeline.continuity)."""
    dropped_retractions: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Retractions that reached the board after their bucket settled (see Board)."""
    ahead_pauses: Counter[str] = field(default_factory=Counter)
    """Times an input partition was paused for running ahead of the others in
    event time (streams.pipeline.alignment)."""


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
        self.watermark: Watermark[tuple[str, int]] = Watermark(settings.idle_timeout_ms)
        self.partitions = settings.internal_partitions
        self.backlogged: set[tuple[str, int]] = set()
        self.taken: dict[tuple[str, int], int] = {}
        """Per input partition, the offset of the last message processed: one
        delivered again at or before it is skipped, not counted twice. Not
        what Faust delivered: a batch can wait between the two (for the lock,
        a read from the log, the hold), and until it is processed its
        partition must hold the watermark (`unread`)."""

    def clock(self, wall_ms: int) -> int | None:
        if self.settings.clock == "wall":
            return wall_ms
        return self.watermark.value(wall_ms)

    def _too_old(self, source: tuple[str, int], clock: int | None) -> int | None:
        """Events before this are late. With the event clock, an event is late
        when it is older than the lateness both behind the watermark and behind
        the newest event of its own input partition: a partition read late (the
        backlog of a dead worker, taken over after other partitions ran ahead)
        is not judged by partitions that ran ahead of it."""
        if clock is None or self.settings.clock == "wall":
            return None if clock is None else clock - self.settings.lateness_ms
        latest = self.watermark.latest(source)
        if clock is None or latest is None:
            return None
        return min(clock, latest) - self.settings.lateness_ms

    def process(
        self, messages: Iterable[tuple[str, int, int, bytes | None]], wall_ms: int, out: Outbox
    ) -> None:
        """(topic, partition, offset, value) messages -> events keyed by interaction."""
        clock = self.clock(wall_ms)
        stats = self.stats
        for topic, partition, offset, raw in messages:
            source = (topic, partition)
            if offset <= self.taken.get(source, -1):
                # Processed already: read from the log when its partition
                # stalled, then delivered after all; or delivered again by a
                # consumer that went back to the committed offset.
                continue
            decoded: Decoded = decode_message(raw, self.channels.get(topic), self.limits)
            if decoded.rejections:
                for rejection in decoded.rejections:
                    stats.deadletters[(topic, rejection.reason)] += 1
                out.deadletters.extend(
                    _dead_letters(raw, decoded.rejections, topic, partition, offset)
                )
            self.taken[source] = offset
            self.watermark.touch(source, wall_ms)
            for event in decoded.events:
                too_old = self._too_old(source, clock)
                if too_old is not None and event.ts < too_old:
                    stats.late[topic] += 1
                    continue
                stats.events[topic] += 1
                self.watermark.observe(source, event.ts, wall_ms)
                target = partition_for(event.interaction_id, self.partitions)
                out.interactions[target].append(event_to_wire(event))

    def behind(self, sources: Iterable[tuple[str, int]], wall_ms: int) -> None:
        """Input partitions with unread messages: however long since they last
        delivered, they are not idle (a backlog after a restart or a rebalance
        must hold the watermark back)."""
        self.backlogged = set(sources)
        for source in self.backlogged:
            self.watermark.touch(source, wall_ms)

    def assigned(self, source: tuple[str, int], wall_ms: int) -> None:
        """Until it delivers (or stays quiet for the idle timeout), a newly
        assigned partition may hold the oldest events: it holds the watermark.
        It is read again from its committed offset: a position left by a batch
        taken before the rebalance would count that re-read as done."""
        self.watermark.touch(source, wall_ms)
        self.taken.pop(source, None)

    def passed(self, source: tuple[str, int], offset: int) -> None:
        """The messages of `source` before `offset` are done: read from the
        log with nothing else there, or committed by the group."""
        self.taken[source] = max(offset - 1, self.taken.get(source, -1))

    def progress(self, wall_ms: int) -> list[list[Any]]:
        """Per input partition: [topic, partition, latest event ts (None: none
        yet), ms since it last delivered, whether it has unread messages]: what
        the board needs for the event-time watermark."""
        report: list[list[Any]] = []
        for source, (ts, last) in self.watermark.sources().items():
            report.append([*source, ts, wall_ms - last, source in self.backlogged])
        for source, last in self.watermark.pending().items():
            report.append([*source, None, wall_ms - last, source in self.backlogged])
        return report

    def forget(self, topic: str, partition: int) -> None:
        self.watermark.forget((topic, partition))
        self.taken.pop((topic, partition), None)


def unread(
    sources: Iterable[tuple[str, int]],
    ends: Mapping[tuple[str, int], int],
    read: Mapping[tuple[str, int], int],
    committed: Mapping[tuple[str, int], int | None],
) -> list[tuple[str, int]]:
    """Input partitions with messages this worker has not taken yet: those read
    from with more after the last one read, and those not read from since
    their assignment whose end is past their committed offset (a dead
    worker's backlog: however long the take-over's recovery lasts, it must
    hold the clocks rather than look idle). A partition whose end is not known
    yet (asked of the broker at its assignment) may have a backlog: it holds
    them too."""
    behind = []
    for source in sources:
        end = ends.get(source)
        if end is None:
            behind.append(source)
            continue
        last = read.get(source)
        position = last + 1 if last is not None else (committed.get(source) or 0)
        if end > position:
            behind.append(source)
    return behind


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
    """Interaction lifecycles; state: interaction_id -> its events (ordered).

    An open interaction is held as its events, which the next one reads; a
    closed one as their JSON: it is kept for the retention horizon, 24 hours
    by default, and rarely read again."""

    def __init__(self, settings: Settings, store: Store, stats: Stats) -> None:
        self.settings = settings
        self.store = store
        self.stats = stats
        self.rules = interaction.Rules(settings.short_abandon_ms, settings.sla)
        self.partitions = settings.internal_partitions
        self.waiting: dict[int, Waiting] = {}
        self.due: dict[int, ExpiryIndex] = {}
        """Per partition, its interactions by when they can expire."""
        self.watermarks: dict[int, Watermark[tuple[str, int]]] = {}
        """Per partition, the event-time watermark of every input partition, from
        the progress every ingest reports in-band (after the events it covers).
        A partition whose reader died with unread messages holds it until its
        next owner reports: a live worker's ingest alone would let the clock
        run past that backlog, and expire or settle contacts it still holds."""
        self.topic = f"{settings.app_id}-by-interaction"

    def clock(self, partition: int, wall_ms: int) -> int | None:
        if self.settings.clock == "wall":
            return wall_ms
        watermark = self.watermarks.get(partition)
        return None if watermark is None else watermark.value(wall_ms)

    def events_of(self, iid: str) -> list[Event] | None:
        value = self.store.get(iid)
        if value is None or isinstance(value, list):
            return value
        return [event_from_wire(w) for w in orjson.loads(value)]

    def adopt(self, partition: int) -> None:
        """Rebuild the live-queue and expiry indexes of a partition from its
        recovered state."""
        index = Waiting()
        due = ExpiryIndex()
        for iid in self.store.scan():
            if partition_for(iid, self.partitions) != partition:
                continue
            events = self.events_of(iid)
            if not events:
                continue
            if (waiting := interaction.waiting_since(events)) is not None:
                index.wait(iid, *waiting)
            due.file(iid, self._expires_at(events))
        self.waiting[partition] = index
        self.due[partition] = due

    def release(self, partition: int) -> None:
        self.waiting.pop(partition, None)
        self.due.pop(partition, None)
        self.watermarks.pop(partition, None)

    def _expires_at(self, events: list[Event]) -> int:
        """The earliest clock at which `expire` forgets an interaction: its
        last activity, plus the time an ended or open one is kept, plus the
        lateness (an event of the interaction that can still come finds it,
        however late the tick runs)."""
        latest, closed = interaction.last_activity(events)
        keep = self.settings.closed_retention_ms if closed else self.settings.open_ttl_ms
        return latest + keep + self.settings.lateness_ms + 1

    def process(
        self,
        partition: int,
        payload: dict[str, Any],
        out: Outbox,
        wall_ms: int,
        offset: int = -1,
    ) -> None:
        """One message of events, or of ingest progress. Its deltas depend only on
        the stored state and the message, so a message processed again after a
        crash sends the same deltas as the first time (the board recognises them
        by its offset); only the clock sent along may be later."""
        if "progress" in payload:
            watermark = self.watermarks.get(partition)
            if watermark is None:
                watermark = self.watermarks[partition] = Watermark(self.settings.idle_timeout_ms)
            for topic, source, ts, idle_ms, behind in payload["progress"]:
                watermark.report((topic, source), ts, wall_ms - idle_ms, behind)
        out.clocked(self.clock(partition, wall_ms))
        changed: dict[str, list[Event]] = {}
        stored: dict[str, list[Event]] = {}
        new: dict[str, list[Any]] = defaultdict(list)
        stats = self.stats
        for wire in payload["e"]:
            event = event_from_wire(wire)
            iid = event.interaction_id
            events = changed.get(iid)
            if events is None:
                events = stored[iid] = self.events_of(iid) or []
            if any(e.event_id == event.event_id for e in events):
                stats.duplicates[event.channel or "unknown"] += 1
                continue
            if event.type not in (STARTED, SURVEY) and not any(e.type == STARTED for e in events):
                stats.unknown_interaction[event.channel or "unknown"] += 1
            events = interaction.ordered([*events, event])
            changed[iid] = events
            new[iid].append(wire)
        waiting = self.waiting.get(partition)
        if waiting is None:
            waiting = self.waiting[partition] = Waiting()
        due = self.due.setdefault(partition, ExpiryIndex())
        # No interaction can expire before its last event plus the shorter of
        # the two keeping times: filed with that, it is judged then, and filed
        # again by its own horizon if it stays.
        soonest = min(self.settings.closed_retention_ms, self.settings.open_ttl_ms)
        soonest += self.settings.lateness_ms + 1
        for iid, events in changed.items():
            try:
                delta, facts, facts_before = self._consequences(stored[iid], events)
            except Exception as error:  # one contact must not stop its partition
                events_json = [_as_json(event_from_wire(w)) for w in new[iid]]
                _poisoned(self.stats, out, (self.topic, partition, offset), events_json, error)
                continue
            _route_deltas(delta, self.partitions, out)
            if facts is not None and facts != facts_before:
                target = partition_for(facts.customer_id, self.partitions)
                out.customers[target].append(facts_to_wire(facts))
            now_waiting = interaction.waiting_since(events)
            if now_waiting is None:
                waiting.leave(iid)
            else:
                waiting.wait(iid, *now_waiting)
            wire = orjson.dumps([event_to_wire(e) for e in events])
            if interaction.last_activity(events)[1]:
                self.store.put_bytes(partition, iid, wire)
            else:
                self.store.put(partition, iid, events, wire)
            due.file(iid, events[-1].ts + soonest)

    def _consequences(
        self, before: list[Event], after: list[Event]
    ) -> tuple[Contributions, interaction.ContactFacts | None, Any]:
        delta = difference(
            interaction.contributions(after, self.rules),
            interaction.contributions(before, self.rules),
        )
        iid = after[0].interaction_id
        return delta, interaction.contact_facts(iid, after), interaction.contact_facts(iid, before)

    def live(self, partition: int, wall_ms: int) -> dict[Key, Live]:
        """Queue now, oldest start and at-risk count per key, at the partition's clock."""
        waiting = self.waiting.get(partition)
        if waiting is None:
            return {}

        def at_risk_after(key: Key) -> float:
            target = self.settings.sla.targets(*key).frt_seconds
            return math.inf if target is None else target * 1000 * self.settings.at_risk_share

        return waiting.gauges(self.clock(partition, wall_ms), at_risk_after)

    def expire(self, partitions: Iterable[int], wall_ms: int) -> int:
        """Forget the interactions of `partitions` past their horizon, each
        partition at its own clock; returns how many."""
        gone = 0
        for partition, clock, due in _due_by_clock(self, partitions, wall_ms):
            for iid in due.take(clock):
                events = self.events_of(iid)
                if not events:
                    continue
                expires_at = self._expires_at(events)
                if expires_at > clock:
                    due.file(iid, expires_at)
                    continue
                self.store.delete(partition, iid)
                if (waiting := self.waiting.get(partition)) is not None:
                    waiting.leave(iid)
                gone += 1
        self.stats.expired["interaction"] += gone
        return gone


def _as_json(event: Event) -> dict[str, Any]:
    """An event as an object of the input contract (what was given), for a dead letter."""
    return {name: value for name, value in asdict(event).items() if value is not None}


def _poisoned(
    stats: Stats, out: Outbox, source: tuple[str, int, int], items: list[Any], error: Exception
) -> None:
    """Dead-letter what made the KPI code fail, and carry on with the rest."""
    topic, partition, offset = source
    log.error("%s[%d]@%d: %s; dead-lettered", topic, partition, offset, error, exc_info=error)
    stats.deadletters[(topic, PROCESSING_ERROR)] += 1
    detail = f"{type(error).__name__}: {error}"[:200]
    out.deadletters.append(
        DeadLetter(orjson.dumps(items), PROCESSING_ERROR, detail, topic, partition, offset, None)
    )


def _route_deltas(delta: Contributions, partitions: int, out: Outbox) -> None:
    for (channel, queue, network, ts, code, value), weight in delta.items():
        out.deltas[partition_for(channel, partitions)].append(
            [channel, queue, network, ts, code, value, weight]
        )


# --- customers --------------------------------------------------------------


class Customers:
    """Repeat contacts and FCR; state: customer_id -> recent contacts."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        stats: Stats | None = None,
        senders: Iterable[str] = (),
    ) -> None:
        self.settings = settings
        self.store = store
        self.stats = stats if stats is not None else Stats()
        self.partitions = settings.internal_partitions
        self.clocks = PartitionClocks()
        self.senders = tuple(senders)
        """The interaction partitions ("i0", ...) whose clocks, carried with their
        facts (field "wm": sender -> clock), make each partition's clock;
        without them a partition's clock is the highest a message carried (the
        lowest of its senders')."""
        self.upstream: dict[int, SenderClocks] = {}
        """Per partition, made only of the messages it read, and saved with its
        state (`marks`): after a crash or a rebalance, a message read again
        meets the clock it met the first time, and so sends the same deltas
        (which the board then recognises)."""
        self.touched: set[int] = set()
        self.due: dict[int, ExpiryIndex] = {}
        """Per partition, its customers by when a contact of theirs can leave."""
        self.topic = f"{settings.app_id}-by-customer"

    def adopt(self, partition: int) -> None:
        """Take over a partition: its clocks as of its last commit, and its
        customers, each to be judged at the next expiry tick (which files it
        again by its own contacts: decoding every history here would hold up
        the rebalance instead)."""
        if self.senders:
            mark = self.store.restore(partition)
            self.upstream[partition] = SenderClocks.from_wire(self.senders, mark)
        due = self.due[partition] = ExpiryIndex()
        for customer in self.store.scan():
            if partition_for(customer, self.partitions) == partition:
                due.file(customer, 0)

    def release(self, partition: int) -> None:
        self.upstream.pop(partition, None)
        self.due.pop(partition, None)
        self.touched.discard(partition)

    def marks(self) -> dict[int, Any]:
        """The clocks of the partitions that read messages since the last call,
        to commit with their state."""
        touched, self.touched = self.touched, set()
        return {p: self.upstream[p].to_wire() for p in sorted(touched) if p in self.upstream}

    def history(self, customer: str) -> repeat.CustomerHistory:
        value = self.store.get(customer)
        if value is None:
            return repeat.CustomerHistory()
        data = orjson.loads(value)
        contacts = {f.interaction_id: f for f in map(facts_from_wire, data["c"])}
        return repeat.CustomerHistory(contacts, dict(data["f"]))

    def _save(self, partition: int, customer: str, history: repeat.CustomerHistory) -> None:
        if not history.contacts:
            self.store.delete(partition, customer)
            if (due := self.due.get(partition)) is not None:
                due.forget(customer)
            return
        wire = orjson.dumps(
            {"c": [facts_to_wire(f) for f in history.contacts.values()], "f": history.frozen}
        )
        self.store.put_bytes(partition, customer, wire)

    def clock(self, partition: int, wall_ms: int) -> int | None:
        if self.settings.clock == "wall":
            return wall_ms
        if self.senders:
            return self.upstream.setdefault(partition, SenderClocks(self.senders)).value()
        return self.clocks.get(partition)

    def process(
        self, partition: int, payload: dict[str, Any], out: Outbox, wall_ms: int, offset: int = -1
    ) -> None:
        clocks: dict[str, int] = payload.get("wm") or {}
        if self.senders:
            upstream = self.upstream.setdefault(partition, SenderClocks(self.senders))
            for sender, clock_ms in clocks.items():
                upstream.report(sender, clock_ms)
            out.clocked(upstream.value())
            self.touched.add(partition)
        else:
            out.clocked(self.clocks.advance(partition, min(clocks.values(), default=None)))
        clock = self.clock(partition, wall_ms)
        touched: dict[str, repeat.CustomerHistory] = {}
        window = self.settings.repeat_window_ms
        lateness, keep = self.settings.lateness_ms, self._keep_ms()
        due = self.due.setdefault(partition, ExpiryIndex())
        for wire in payload["f"]:
            facts = facts_from_wire(wire)
            history = touched.get(facts.customer_id)
            if history is None:
                history = touched[facts.customer_id] = self.history(facts.customer_id)
                if clock is not None:
                    repeat.settle(history, clock, lateness, window, keep)
            previous = history.contacts.get(facts.interaction_id)
            try:
                delta = repeat.update(history, facts, window)
            except Exception as error:  # one customer must not stop its partition
                if previous is None:
                    history.contacts.pop(facts.interaction_id, None)
                else:
                    history.contacts[facts.interaction_id] = previous
                _poisoned(self.stats, out, (self.topic, partition, offset), [wire], error)
                continue
            _route_deltas(delta, self.partitions, out)
            due.file(facts.customer_id, repeat.departure_ms(facts, lateness, window, keep))
        for customer, history in touched.items():
            self._save(partition, customer, history)

    def _keep_ms(self) -> int:
        return max(self.settings.closed_retention_ms, self.settings.open_ttl_ms)

    def expire(self, partitions: Iterable[int], wall_ms: int) -> int:
        """Settle the histories of `partitions`' customers at their clocks;
        returns how many contacts left them."""
        lateness, window, keep = (
            self.settings.lateness_ms,
            self.settings.repeat_window_ms,
            self._keep_ms(),
        )
        gone = 0
        for partition, clock, due in _due_by_clock(self, partitions, wall_ms):
            for customer in due.take(clock):
                history = self.history(customer)
                count = len(history.contacts)
                repeat.settle(history, clock, lateness, window, keep)
                if len(history.contacts) != count:
                    gone += count - len(history.contacts)
                    self._save(partition, customer, history)
                departure = repeat.next_departure(history, lateness, window, keep)
                if departure is not None:
                    due.file(customer, departure)
        return gone


class _Expiring(Protocol):
    due: dict[int, ExpiryIndex]

    def clock(self, partition: int, wall_ms: int) -> int | None: ...


def _due_by_clock(
    stage: _Expiring, partitions: Iterable[int], wall_ms: int
) -> Iterator[tuple[int, int, ExpiryIndex]]:
    """(partition, its clock, its expiry index) for those of `partitions` that
    have both."""
    for partition in partitions:
        clock = stage.clock(partition, wall_ms)
        due = stage.due.get(partition)
        if clock is not None and due is not None:
            yield partition, clock, due


# --- board ------------------------------------------------------------------


STAGES = {"i": "interactions", "c": "customers"}
"""Senders of delta messages, by the letter their sender id starts with."""


def applied_before(last: list[int] | None, offset: int, first: int, count: int) -> int:
    """How many leading items of a delta run (from the message at `offset`, its
    first item at `first` in that message's output) the board applied before,
    given the last [offset, index] it applied from the same sender."""
    if last is None or offset > last[0]:
        return 0
    if offset < last[0]:
        return count
    return min(count, max(0, last[1] + 1 - first))


def bucket_store_key(key: Key, ring_id: int, index: int) -> str:
    return f"{key[0]}|{key[1]}|{key[2]}|{ring_id}|{index}"


def settled_store_key(key: Key) -> str:
    return f"{key[0]}|{key[1]}|{key[2]}|settled"


class BoardStage:
    """Applies contribution deltas to the board and keeps its changelog current."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        stats: Stats | None = None,
        senders: Iterable[str] = (),
    ) -> None:
        self.stats = stats if stats is not None else Stats()
        self.senders = tuple(senders)
        """The interaction and customer partitions ("i0", "c0", ...) that send to
        the board. Their clocks come with their messages, behind the deltas they
        cover; the board's clock never passes the lowest, so it cannot settle a
        bucket that a delta still on its way would change."""
        self.upstream: dict[int, SenderClocks] = {}
        self.settings = settings
        self.store = store
        self.partitions = settings.internal_partitions
        self.board = Board(
            settings.windows_ms,
            settings.window_buckets,
            settings.lateness_ms,
            settings.sla,
            dropped=self.stats.dropped_retractions,
        )
        self.labels = {span: settings.window_label(span) for span in settings.windows_ms}
        self.watermark: Watermark[tuple[str, int]] = Watermark(settings.idle_timeout_ms)
        self.owned: set[int] = set()
        self.cap = LabelCap(settings.labels, settings.sla)
        self.applied: dict[int, dict[str, list[int]]] = {}
        """Per board partition: for each sender (stage and partition), the
        [offset, index] of the last delta applied (see streams.pipeline.outgoing).
        Kept with the state (`flush` commits it, with the partition's clock, as
        the partition's mark), so a delta sent again after a crash or a
        rebalance is recognised and not counted twice."""
        self.marked: set[int] = set()
        self.channels_of: dict[int, list[str]] = {}
        """The channels each partition holds (the partitions missing hold none)."""
        for channel in (*CHANNELS, UNKNOWN):
            self.channels_of.setdefault(self.partition_of(channel), []).append(channel)

    def partition_of(self, channel: str) -> int:
        return partition_for(channel, self.partitions)

    def label(self, key: Key) -> Key:
        """The key a contribution or gauge of `key` counts under: queue and network
        names beyond the [labels] caps fold into the `other` bucket."""
        return self.cap.key(key)

    def adopt(self, partition: int) -> None:
        """Rebuild the board's keys of a partition from the recovered changelog,
        at the clock they were committed at.

        Without that clock a new owner would wait for one from its senders,
        which after a restart or a rebalance know only what they read since: in
        a quiet hour nothing, and the channels go unserved until traffic
        resumes; after a few late events read again, a time long past, and the
        channels are served with windows that miss the state just restored."""
        self.owned.add(partition)
        applied, clock = _board_mark(self.store.restore(partition))
        self.applied[partition] = applied
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
        if clock is not None:
            self.board.resume(clock, self.channels_of.get(partition, ()))

    def release(self, partition: int) -> None:
        self.owned.discard(partition)
        self.applied.pop(partition, None)
        self.upstream.pop(partition, None)
        for channel in {key[0] for key in self.board.keys}:
            if self.partition_of(channel) == partition:
                self.board.forget_channel(channel)
        for source in [s for s in self.board.live if s[1] == partition]:
            del self.board.live[source]

    def process(self, payload: dict[str, Any], wall_ms: int, partition: int = 0) -> None:
        """One message on board partition `partition`."""
        if "d" in payload:
            for sender, clock_ms in (payload.get("wm") or {}).items():
                self._heard(partition, sender, clock_ms)
            applied = self.applied.setdefault(partition, {})
            apply, label = self.board.apply, self.label
            for sender, offset, first, items in payload["d"]:
                seen = applied_before(applied.get(sender), offset, first, len(items))
                if seen:
                    self.stats.redelivered[STAGES[sender[0]]] += 1
                    if seen == len(items):
                        continue
                for channel, queue, network, ts, code, value, weight in items[seen:]:
                    apply(label((channel, queue, network)), ts, code, value, weight)
                applied[sender] = [offset, first + len(items) - 1]
                self.marked.add(partition)
        elif "live" in payload:
            gauges: dict[Key, Live] = {}
            for c, q, n, count, oldest, at_risk in payload["g"]:
                key, live = self.label((c, q, n)), Live(count, oldest, at_risk)
                # Names folded into one bucket add up.
                gauges[key] = gauges[key].plus(live) if key in gauges else live
            self.board.set_live((payload["live"], payload["to"]), gauges)
            self._heard(partition, f"i{payload['live']}", payload.get("wm"))
        elif "clock" in payload:
            self._heard(partition, payload["clock"], payload["wm"])
        elif "progress" in payload:
            for topic, partition, ts, idle_ms, behind in payload["progress"]:
                self.watermark.report((topic, partition), ts, wall_ms - idle_ms, behind)

    def _heard(self, partition: int, sender: str, clock_ms: int | None) -> None:
        if self.senders:
            self.upstream.setdefault(partition, SenderClocks(self.senders)).report(sender, clock_ms)

    def held(self) -> set[int]:
        """The partitions holding channels that this stage answers for: with
        senders, the owned ones; without (one process, nothing to share), all."""
        partitions = set(self.channels_of)
        return partitions & self.owned if self.senders else partitions

    def clocks(self, wall_ms: int) -> dict[int, int]:
        """The clock of each held partition: wall time, or the watermark held
        back by the lowest clock its senders reported on that partition (none
        until every sender has)."""
        if self.settings.clock == "wall":
            return dict.fromkeys(self.held(), wall_ms)
        base = self.watermark.value(wall_ms)
        if base is None:
            return {}
        if not self.senders:
            return dict.fromkeys(self.held(), base)
        clocks = {}
        for partition in self.held():
            upstream = self.upstream.setdefault(partition, SenderClocks(self.senders)).value()
            if upstream is not None:
                clocks[partition] = min(base, upstream)
        return clocks

    def tick(self, wall_ms: int) -> int | None:
        """Move each partition's channels to its clock. Returns the board's clock
        once every partition it holds has one (its senders', or the one it was
        adopted at), else None: a snapshot waits for that, or a channel taken
        over and not yet clocked would vanish from Redis and cc.kpis until it is."""
        for partition, clock in self.clocks(wall_ms).items():
            before = self._clock_of(partition)
            self.board.advance(clock, self.channels_of[partition])
            if self._clock_of(partition) != before:
                self.marked.add(partition)
        if any(self._clock_of(p) is None for p in self.held()):
            return None
        return self.board.clock_ms

    def _clock_of(self, partition: int) -> int | None:
        """Where the channels of `partition` stand (they move together)."""
        channels = self.channels_of.get(partition)
        return self.board.clocks.get(channels[0]) if channels else None

    def flush(self) -> None:
        """Write every changed bucket and settled total to the store."""

        def part(key: Key) -> int:
            return self.partition_of(key[0])

        changed, removed, settled = self.board.take_changes()
        touched = self.marked
        self.marked = set()
        for bucket_id in removed:
            key, ring_id, index = bucket_id
            touched.add(part(key))
            self.store.delete(part(key), bucket_store_key(key, ring_id, index))
        for bucket_id in changed:
            key, ring_id, index = bucket_id
            agg = self.board.bucket(bucket_id)
            touched.add(part(key))
            self.store.put(
                part(key),
                bucket_store_key(key, ring_id, index),
                agg,
                orjson.dumps(agg.to_wire()),
            )
        for key in settled:
            agg = self.board.keys[key].settled
            touched.add(part(key))
            self.store.put(part(key), settled_store_key(key), agg, orjson.dumps(agg.to_wire()))
        # The buckets, the senders' positions they include and the clock they
        # stand at become durable together: a restart never re-applies, or
        # misses, a delta message, and serves what it recovered as it was.
        self.store.commit(
            {
                p: {"applied": self.applied.setdefault(p, {}), "clock": self._clock_of(p)}
                for p in sorted(touched)
            }
        )


def _board_mark(mark: Any) -> tuple[dict[str, list[int]], int | None]:
    """(positions applied per sender, clock) of a board partition's mark; a mark
    committed before the clock was part of it holds the positions alone."""
    if not mark:
        return {}, None
    if "applied" in mark:
        return dict(mark["applied"]), mark["clock"]
    return dict(mark), None


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
