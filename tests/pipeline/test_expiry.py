"""Expiry through the index by due time: a tick forgets exactly what judging
every key held would forget, and reads nothing that cannot be due."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import orjson
import pytest

from streams.config import Settings
from streams.core import interaction, repeat
from streams.feed import Feed
from streams.pipeline.stages import Customers, Interactions, Stats
from streams.pipeline.wire import partition_for
from tests.pipeline.harness import DictStore, LocalPipeline

T0 = 1_767_225_600_000
MINUTE = 60_000
HOUR = 60 * MINUTE
SETTINGS = replace(
    Settings(),
    clock="wall",
    lateness_ms=10 * MINUTE,
    closed_retention_ms=HOUR,
    open_ttl_ms=3 * HOUR,
    repeat_window_ms=2 * HOUR,
)
PARTITIONS = range(SETTINGS.internal_partitions)
CHUNK = 20
"""Input events per batch: a few minutes of event time, within the lateness."""


class CountingStore(DictStore):
    """Counts the keys read: what a tick costs."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: str) -> Any:
        self.reads += 1
        return super().get(key)


def feed(events: int, seed: int = 7) -> list[tuple[int, tuple[str, bytes]]]:
    """(event time, input message) of a contact a minute among 40 customers, so
    that customers come back within the repeat window."""
    live = Feed(seed, T0, customers=40, gap_ms=MINUTE).live()
    return [
        (at, (item.topic, orjson.dumps(item.event))) for at, item in itertools.islice(live, events)
    ]


def customers_settled_one_by_one(stage: Customers, wall_ms: int) -> None:
    """The reference: every customer held settled at the clock, as the tick
    did before the index."""
    keep = max(SETTINGS.closed_retention_ms, SETTINGS.open_ttl_ms)
    for customer in list(stage.store.scan()):
        history = stage.history(customer)
        count = len(history.contacts)
        repeat.settle(history, wall_ms, SETTINGS.lateness_ms, SETTINGS.repeat_window_ms, keep)
        if len(history.contacts) != count:
            stage._save(partition_for(customer, stage.partitions), customer, history)


def interactions_left(stage: Interactions, wall_ms: int) -> set[str]:
    """The reference: the interactions whose last activity is within the time
    kept (ended or not) plus the lateness."""
    left = set()
    for iid in stage.store.scan():
        latest, closed = interaction.last_activity(stage.events_of(iid) or [])
        keep = SETTINGS.closed_retention_ms if closed else SETTINGS.open_ttl_ms
        if latest >= wall_ms - keep - SETTINGS.lateness_ms:
            left.add(iid)
    return left


def sent(pipe: LocalPipeline, messages: list[tuple[int, tuple[str, bytes]]]) -> int:
    """`messages` sent in chunks of a few minutes of event time, each on the
    wall clock of its last event (none is late); returns the last clock."""
    for first in range(0, len(messages), CHUNK):
        part = messages[first : first + CHUNK]
        pipe.send([message for _, message in part], part[-1][0])
    return messages[-1][0]


@pytest.mark.parametrize("chunks_per_tick", [1, 15])
def test_ticks_through_the_index_forget_what_judging_every_key_forgets(
    chunks_per_tick: int,
) -> None:
    """Two pipelines fed the same events, ticking at the same clocks: one
    through the stages' expiry, the other judging every key held."""
    indexed, reference = LocalPipeline(SETTINGS), LocalPipeline(SETTINGS)
    messages = feed(3_000)
    expired = 0
    step = CHUNK * chunks_per_tick
    for first in range(0, len(messages), step):
        wall = max(sent(pipe, messages[first : first + step]) for pipe in (indexed, reference))
        expected = interactions_left(indexed.interactions, wall)
        expired += indexed.interactions.expire(PARTITIONS, wall)
        assert set(indexed.interactions.store.data) == expected
        indexed.customers.expire(PARTITIONS, wall)
        reference.interactions.expire(PARTITIONS, wall)
        customers_settled_one_by_one(reference.customers, wall)
        assert indexed.customers.store.data.keys() == reference.customers.store.data.keys()
        for customer in indexed.customers.store.data:
            assert indexed.customers.history(customer) == reference.customers.history(customer), (
                customer
            )
    assert indexed.stats.events.total() == len(messages), "no event was late"
    assert expired > 300, "most interactions fed left"
    assert reference.customers.store.data, "customers are held at the end"


def test_a_tick_with_nothing_due_reads_no_key() -> None:
    """What an expiry tick costs no longer grows with the state held."""
    pipe = LocalPipeline(SETTINGS)
    pipe.interactions = Interactions(SETTINGS, CountingStore(), pipe.stats)
    pipe.customers = Customers(SETTINGS, CountingStore())
    wall = sent(pipe, feed(150))
    assert wall - T0 < SETTINGS.closed_retention_ms, "nothing is due yet"
    assert len(pipe.interactions.store.data) > 30
    assert len(pipe.customers.store.data) > 15
    stores = [pipe.interactions.store, pipe.customers.store]
    for store in stores:
        store.reads = 0
    assert pipe.interactions.expire(PARTITIONS, wall + MINUTE) == 0
    assert pipe.customers.expire(PARTITIONS, wall + MINUTE) == 0
    assert [store.reads for store in stores] == [0, 0]


def test_an_adopted_partition_is_judged_at_its_first_tick() -> None:
    """A worker taking over a partition finds its keys in the recovered store:
    the first tick judges them all, as if they had been stored here."""
    first = LocalPipeline(SETTINGS)
    last = sent(first, feed(600))
    interactions = Interactions(SETTINGS, first.interactions.store.replayed(), Stats())
    customers = Customers(SETTINGS, first.customers.store.replayed())
    for partition in PARTITIONS:
        interactions.adopt(partition)
        customers.adopt(partition)
    later = last + 4 * HOUR
    assert interactions.expire(PARTITIONS, later) == len(first.interactions.store.data)
    assert customers.expire(PARTITIONS, later) > 0
    assert interactions.store.data == {}
    assert customers.store.data == {}
