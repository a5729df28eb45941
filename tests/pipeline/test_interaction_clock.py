"""An interaction partition's event clock comes from every ingest's progress
reports: the backlog of an input partition whose reader died holds it, so a
live worker that ran ahead cannot expire contacts whose other events are still
in that backlog (tests/integration/test_faults.py shows it end to end)."""

from __future__ import annotations

from dataclasses import replace

import orjson

from streams.config import Settings
from streams.feed import Feed
from streams.pipeline.stages import Ingest, Interactions, Outbox, Stats
from streams.pipeline.wire import partition_for
from tests.pipeline.harness import DictStore

T0 = 1_767_225_600_000
WALL = 2_000_000_000_000
DAY_MS = 86_400_000
SETTINGS = replace(Settings(), clock="event")
IDLE_MS = SETTINGS.idle_timeout_ms


def progress(topic: str, partition: int, ts: int, behind: bool) -> dict[str, object]:
    return {"e": [], "progress": [[topic, partition, ts, 0, behind]]}


def test_a_dead_readers_backlog_holds_the_clock_and_an_idle_partition_does_not() -> None:
    stage = Interactions(SETTINGS, DictStore(), Stats())
    out = Outbox()
    stage.process(0, progress("cc.calls", 0, T0, behind=True), out, WALL)
    stage.process(0, progress("cc.calls", 1, T0, behind=False), out, WALL)
    stage.process(0, progress("cc.calls", 2, T0 + 3 * DAY_MS, behind=False), out, WALL)
    later = WALL + 10 * IDLE_MS
    assert stage.clock(0, later) == T0
    stage.process(0, progress("cc.calls", 0, T0 + 2 * DAY_MS, behind=False), out, later)
    assert stage.clock(0, later + 10 * IDLE_MS) == T0 + 3 * DAY_MS
    assert stage.clock(1, later) is None, "a partition without reports has no clock"


def test_contacts_are_not_expired_past_a_dead_readers_backlog() -> None:
    """A contact's answer and end came through a live worker; its start sits in
    a dead worker's backlog; the live worker's own input ran days ahead."""
    ingest = Ingest(SETTINGS, Stats())
    stage = Interactions(SETTINGS, DictStore(), Stats())
    contact = Feed(seed=3, start_ms=T0, customers=10, gap_ms=1_000).contacts(1)
    later_events = [item.event for item in contact if item.event["type"] != "contact.started"]
    assert later_events
    out = Outbox()
    ingest.process(
        [("cc.calls", 2, n, orjson.dumps(e)) for n, e in enumerate(later_events)], WALL, out
    )
    (partition, items), *_ = out.interactions.items()
    stage.process(partition, {"e": items}, Outbox(), WALL)
    stage.process(partition, progress("cc.calls", 0, T0, behind=True), Outbox(), WALL)
    stage.process(partition, progress("cc.calls", 2, T0 + 3 * DAY_MS, behind=False), Outbox(), WALL)
    assert stage.expire([partition], WALL + 10 * IDLE_MS) == 0
    stage.process(partition, progress("cc.calls", 0, T0 + 3 * DAY_MS, behind=False), Outbox(), WALL)
    assert stage.expire([partition], WALL + 10 * IDLE_MS) == 1


def test_an_ended_interaction_is_kept_for_the_retention_plus_the_lateness() -> None:
    """An event within the lateness (a retried copy, a reopen) still finds it."""
    stage = Interactions(SETTINGS, DictStore(), Stats())
    ingest = Ingest(SETTINGS, Stats())
    contact = [item.event for item in Feed(seed=5, start_ms=T0, customers=10, gap_ms=1).contacts(1)]
    out = Outbox()
    ingest.process([("cc.calls", 0, n, orjson.dumps(e)) for n, e in enumerate(contact)], WALL, out)
    (partition, items), *_ = out.interactions.items()
    stage.process(partition, {"e": items}, Outbox(), WALL)
    ended = max(e.ts for e in stage.events_of(contact[0]["interaction_id"]) or [])
    retained = ended + SETTINGS.closed_retention_ms
    stage.process(partition, progress("cc.calls", 0, retained + 60_000, False), Outbox(), WALL)
    assert stage.expire([partition], WALL) == 0
    after = retained + SETTINGS.lateness_ms + 1
    stage.process(partition, progress("cc.calls", 0, after, False), Outbox(), WALL)
    assert stage.expire([partition], WALL) == 1


def test_one_expiry_pass_judges_each_partition_by_its_own_clock() -> None:
    """One expiry call serves all the partitions a worker owns: an
    interaction goes by its own partition's clock, and only partitions named
    are touched."""
    stage = Interactions(SETTINGS, DictStore(), Stats())
    ingest = Ingest(SETTINGS, Stats())
    feed = Feed(seed=11, start_ms=T0, customers=100, gap_ms=1)
    events = [item.event for item in feed.contacts(60)]
    out = Outbox()
    ingest.process([("cc.calls", 0, n, orjson.dumps(e)) for n, e in enumerate(events)], WALL, out)
    for partition, items in out.interactions.items():
        stage.process(partition, {"e": items}, Outbox(), WALL)
    held: dict[int, set[str]] = {p: set() for p in range(SETTINGS.internal_partitions)}
    for iid in stage.store.scan():
        held[partition_for(iid, SETTINGS.internal_partitions)].add(iid)
    gone_by, kept_by, not_named, *_ = (p for p in sorted(held) if held[p])
    past_every_horizon = T0 + 8 * DAY_MS + SETTINGS.lateness_ms
    stage.process(gone_by, progress("cc.calls", 0, past_every_horizon, False), Outbox(), WALL)
    stage.process(kept_by, progress("cc.calls", 0, T0, False), Outbox(), WALL)
    stage.process(not_named, progress("cc.calls", 0, past_every_horizon, False), Outbox(), WALL)

    assert stage.expire([gone_by, kept_by], WALL) == len(held[gone_by])
    assert set(stage.store.scan()) == set().union(*held.values()) - held[gone_by]
