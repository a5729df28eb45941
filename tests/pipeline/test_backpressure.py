"""Ingest holds off input while the internal backlog is above its limit
(streams.pipeline.backpressure): the backlog stays bounded whatever the
input's length, and the stages after ingest never run out of work because of
the hold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.pipeline.backpressure import (
    MEAN_WEIGHT,
    UNKNOWN_SIZE,
    InputHold,
    MessageSizes,
    backlog,
)

TOPICS = ["by-interaction", "by-customer", "kpi-deltas"]
Partitions = st.dictionaries(
    st.tuples(st.sampled_from(TOPICS), st.integers(0, 7)),
    st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)),
)


@given(Partitions, st.dictionaries(st.sampled_from(TOPICS), st.integers(0, 1000)))
def test_the_backlog_is_what_each_partition_has_past_its_position(
    partitions: dict[tuple[str, int], tuple[int, int]], sizes_sent: dict[str, int]
) -> None:
    sizes = MessageSizes()
    for topic, items in sizes_sent.items():
        sizes.sent(topic, items)
    ends = {tp: end for tp, (end, _) in partitions.items()}
    positions = {tp: position for tp, (_, position) in partitions.items()}
    waiting = {tp: end - position for tp, (end, position) in partitions.items() if end > position}
    items = sum(n * sizes_sent.get(tp[0], UNKNOWN_SIZE) for tp, n in waiting.items())
    assert backlog(ends, positions, sizes) == (sum(waiting.values()), items)


def test_a_position_past_the_known_end_counts_nothing() -> None:
    """The ends are asked of the broker before the positions: messages produced
    and processed in between put a position past its end."""
    ends = {("kpi-deltas", 0): 100, ("kpi-deltas", 1): 50}
    positions = {("kpi-deltas", 0): 120, ("kpi-deltas", 1): 40}
    sizes = MessageSizes()
    sizes.sent("kpi-deltas", 3)
    assert backlog(ends, positions, sizes) == (10, 30)


def test_a_topic_weighs_the_mean_size_of_its_recent_messages() -> None:
    """A replay's batches of a thousand events, after a quiet hour of single
    events and heartbeats: the estimate follows the messages now sent."""
    sizes = MessageSizes()
    assert sizes.of("by-interaction") == UNKNOWN_SIZE
    for _ in range(1000):
        sizes.sent("by-interaction", 1)
    assert sizes.of("by-interaction") == pytest.approx(1)
    for _ in range(round(3 / MEAN_WEIGHT)):
        sizes.sent("by-interaction", 1000)
    assert 900 < sizes.of("by-interaction") < 1000
    assert sizes.of("kpi-deltas") == UNKNOWN_SIZE


@given(st.integers(2, 5000), st.lists(st.integers(0, 10_000), max_size=50))
def test_the_hold_starts_above_the_limit_and_ends_at_half_of_it(
    limit: int, measured: list[int]
) -> None:
    hold = InputHold(limit)
    holding = False
    for waiting in measured:
        if waiting > limit:
            holding = True
        elif waiting <= limit // 2:
            holding = False
        assert hold.update(waiting // 10, waiting) is holding
        assert (hold.messages, hold.waiting) == (waiting // 10, waiting)


def test_between_half_and_the_limit_the_hold_stays_as_it_was() -> None:
    hold = InputHold(1000)
    assert [hold.update(1, w) for w in (800, 1001, 800, 501, 500, 800)] == [
        False,
        True,
        True,
        True,
        False,
        False,
    ]


def test_a_limit_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        InputHold(1)


def replay(
    limit: int, total: int, ingest_rate: int, stage_rate: int, batch: int
) -> tuple[int, int]:
    """A backlog of `total` internal items that ingest writes at up to
    `ingest_rate` per check, in batches of up to `batch`, and the stages
    process at up to `stage_rate`: the largest backlog seen, and the checks it
    took to process everything."""
    hold = InputHold(limit)
    left, waiting, largest, checks = total, 0, 0, 0
    while left or waiting:
        checks += 1
        hold.update(waiting, waiting)
        budget = ingest_rate
        while left and budget and not hold.holding:
            written = min(batch, budget, left)
            left -= written
            budget -= written
            waiting += written
            hold.add(written)
        largest = max(largest, waiting)
        waiting -= min(stage_rate, waiting)
    return largest, checks


@given(
    st.integers(10, 5000),
    st.integers(1, 200_000),
    st.integers(1, 5000),
    st.integers(1, 5000),
    st.integers(1, 5000),
)
def test_a_backlog_of_any_length_stays_within_a_batch_of_the_limit(
    limit: int, total: int, ingest_rate: int, stage_rate: int, batch: int
) -> None:
    largest, _ = replay(limit, total, ingest_rate, stage_rate, batch)
    assert largest <= limit + min(batch, ingest_rate)


@given(st.integers(10, 5000), st.integers(1, 200_000), st.data())
def test_the_hold_never_leaves_the_stages_without_work(
    limit: int, total: int, data: st.DataObject
) -> None:
    """With ingest at least as fast as the stages, and the stages taking at most
    half the limit per check, the replay takes as many checks as the stages
    need alone: holding costs no throughput."""
    stage_rate = data.draw(st.integers(1, limit // 2))
    ingest_rate = data.draw(st.integers(stage_rate, 10 * stage_rate))
    batch = data.draw(st.integers(1, ingest_rate))
    _, checks = replay(limit, total, ingest_rate, stage_rate, batch)
    assert checks == -(-total // stage_rate)


def test_items_sent_between_measurements_start_the_hold() -> None:
    hold = InputHold(1000)
    assert hold.add(600) is False
    assert hold.add(600) is True
    assert hold.waiting == 1200
    assert hold.update(10, 400) is False
