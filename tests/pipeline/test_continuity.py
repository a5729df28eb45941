"""A stage gets every message of a partition, in order, even when the consumer
drops some: the missing offsets are found and read from the log before the
message that showed them, or, at a partition's end, once it stalls
(streams.pipeline.continuity)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.pipeline.continuity import Continuity, Stalls, waiting

TP = ("by-interaction", 1)


def logs(largest_step: int = 3) -> st.SearchStrategy[list[int]]:
    """A partition's offsets; steps above 1 are gaps in the log itself
    (transaction markers, compaction, retention)."""
    return st.lists(st.integers(1, largest_step), min_size=1, max_size=60).map(
        lambda steps: [sum(steps[:i]) for i in range(len(steps))]
    )


def take_all(log: list[int], delivered: list[int], continuity: Continuity) -> tuple[list[int], int]:
    """What a stage processes when the consumer delivers `delivered`, each
    missing range read from `log`; and how many reads came back empty."""
    taken: list[int] = []
    empty = 0
    for offset in delivered:
        missing = continuity.missing(TP, offset)
        found = [o for o in log if o in missing]
        if missing and not found:
            continuity.has_gaps(TP)
            empty += 1
        taken.extend(found)
        taken.append(offset)
    return taken, empty


@given(logs(largest_step=1), st.data())
def test_every_message_is_taken_once_in_order_whatever_the_consumer_drops(
    log: list[int], data: st.DataObject
) -> None:
    """The last message is never dropped here: the internal topics carry a
    clock message every second, which shows a loss before it."""
    drops = set(data.draw(st.lists(st.sampled_from(log[:-1]), max_size=10))) if log[:-1] else set()
    continuity = Continuity()
    continuity.start(TP, 0)
    assert take_all(log, [o for o in log if o not in drops], continuity) == (log, 0)


@given(logs())
def test_a_log_with_gaps_of_its_own_costs_one_empty_read(log: list[int]) -> None:
    continuity = Continuity()
    continuity.start(TP, 0)
    taken, empty = take_all(log, log, continuity)
    assert taken == log
    assert empty == (log != list(range(len(log))))


@given(logs(), st.integers(0, 59))
def test_messages_read_again_are_taken_without_reading_the_log(log: list[int], back: int) -> None:
    """Faust seeks back to the committed offset in some of its recoveries: what
    comes again is taken again (the stages recognise it), with no range missing."""
    continuity = Continuity()
    continuity.start(TP, 0)
    for offset in log:
        continuity.missing(TP, offset)
    again = log[min(back, len(log) - 1) :]
    assert all(not continuity.missing(TP, offset) for offset in again)


def test_a_dropped_message_is_named() -> None:
    continuity = Continuity()
    continuity.start(TP, 55)
    assert [list(continuity.missing(TP, o)) for o in (55, 56, 57, 60, 61)] == [
        [],
        [],
        [],
        [58, 59],
        [],
    ]


def test_the_first_messages_after_an_assignment_dropped_are_named() -> None:
    continuity = Continuity()
    continuity.start(TP, 55)
    assert continuity.missing(TP, 61) == range(55, 61)


def test_a_partition_with_gaps_of_its_own_is_checked_only_after_a_start() -> None:
    """Transaction markers: Faust loses input in its recovery."""
    continuity = Continuity()
    continuity.start(TP, 213)
    assert continuity.missing(TP, 215) == range(213, 215)
    continuity.has_gaps(TP)
    assert not continuity.missing(TP, 217)
    continuity.start(TP, 213)
    assert continuity.missing(TP, 484) == range(213, 484)
    assert not continuity.missing(TP, 486)


def test_without_a_start_the_first_message_sets_the_position() -> None:
    continuity = Continuity()
    assert not continuity.missing(TP, 40)
    assert continuity.missing(TP, 42) == range(41, 42)
    continuity.forget(TP)
    assert not continuity.known(TP)
    assert not continuity.missing(TP, 90)
    assert continuity.known(TP)


def test_a_range_read_from_the_log_moves_the_next_offset_past_it() -> None:
    continuity = Continuity()
    continuity.start(TP, 55)
    assert continuity.next_offset(TP) == 55
    continuity.passed(TP, 70)
    assert continuity.next_offset(TP) == 70
    assert not continuity.missing(TP, 70)
    assert continuity.missing(TP, 73) == range(71, 73)
    continuity.passed(TP, 60)
    assert continuity.next_offset(TP) == 74


def test_a_partition_behind_whose_next_offset_stays_is_stalled_after_the_wait() -> None:
    stalls = Stalls(10.0)
    assert stalls.stalled({TP: 40}, 0.0) == []
    assert stalls.stalled({TP: 40}, 9.9) == []
    assert stalls.stalled({TP: 40}, 10.0) == [TP]
    # Read from the log, or not: it waits again before it counts once more.
    assert stalls.stalled({TP: 40}, 15.0) == []
    assert stalls.stalled({TP: 40}, 20.0) == [TP]


def test_a_partition_not_taken_from_since_its_assignment_stalls_too() -> None:
    stalls = Stalls(5.0)
    assert stalls.stalled({TP: None}, 0.0) == []
    assert stalls.stalled({TP: None}, 6.0) == [TP]


def test_a_partition_that_moves_or_catches_up_starts_its_wait_again() -> None:
    stalls = Stalls(10.0)
    stalls.stalled({TP: 40}, 0.0)
    assert stalls.stalled({TP: 41}, 9.0) == []
    assert stalls.stalled({TP: 41}, 18.0) == []
    assert stalls.stalled({}, 19.0) == []
    assert stalls.stalled({TP: 41}, 25.0) == []
    assert stalls.stalled({TP: 41}, 35.0) == [TP]


@given(st.lists(st.integers(0, 15), max_size=40))
def test_a_partition_that_delivers_between_checks_never_stalls(steps: list[int]) -> None:
    """Checks `steps` seconds apart; the other partition stays still."""
    other = ("calls", 2)
    stalls = Stalls(10.0)
    now = 0
    waited = 0
    for offset, step in enumerate(steps):
        now += step
        waited += step
        result = stalls.stalled({TP: offset, other: 7}, float(now))
        assert TP not in result
        assert (other in result) == (offset > 0 and waited >= 10)
        if other in result or offset == 0:
            waited = 0


AHEAD = ("surveys", 1)


def test_a_paused_partition_waits_only_once_the_consumer_handed_on_its_end() -> None:
    ends = {TP: 50, AHEAD: 80}
    # Still to be fetched: paused by design, not stalled.
    assert waiting([TP, AHEAD], {AHEAD}, {AHEAD: 60}, ends) == [TP]
    # Handed on up to its end and not processed: lost, its wait runs.
    assert waiting([TP, AHEAD], {AHEAD}, {AHEAD: 80}, ends) == [TP, AHEAD]
    # No position (being reset), or no end known: not known to be handed on.
    assert waiting([TP, AHEAD], {AHEAD}, {}, ends) == [TP]
    assert waiting([TP, AHEAD], {AHEAD}, {AHEAD: 80}, {TP: 50}) == [TP]


def test_tails_lost_on_partitions_paused_and_not_are_read_after_one_wait() -> None:
    """Alignment pauses the partitions ahead; with their ends handed on, their
    waits run beside the slowest one's: all are read at the first stall, not
    one wait after the other as they are released."""
    stalls = Stalls(10.0)
    ends = {TP: 50, AHEAD: 80}
    taken = {TP: 40, AHEAD: 70}
    for now in (0.0, 2.0, 4.0, 6.0, 8.0):
        lagging = waiting([TP, AHEAD], {AHEAD}, {AHEAD: 80}, ends)
        assert stalls.stalled({tp: taken[tp] for tp in lagging}, now) == []
    lagging = waiting([TP, AHEAD], {AHEAD}, {AHEAD: 80}, ends)
    assert stalls.stalled({tp: taken[tp] for tp in lagging}, 10.0) == [TP, AHEAD]
