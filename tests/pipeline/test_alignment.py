"""Input alignment (streams.pipeline.alignment): on a backlog, an input
partition read far ahead of the slowest one with unread messages, in event
time, is paused until that one catches up; the slowest never is, so the
input always moves, and with nothing unread nothing is paused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.pipeline.alignment import InputAlignment, Source

MIN = 60_000
SKEW = 10 * MIN
CALLS = ("cc.calls", 0)
CHATS = ("cc.chats", 0)
SURVEYS = ("cc.surveys", 0)

Sources = st.sampled_from([(topic, p) for topic in ("a", "b", "c") for p in range(3)])
Check = st.tuples(
    st.dictionaries(Sources, st.one_of(st.none(), st.integers(0, 30 * SKEW))),
    st.sets(Sources),
)
"""One check's input: each partition's latest event time, and which have
unread messages."""


def checked(
    alignment: InputAlignment, *checks: tuple[dict[Source, int | None], set[Source]]
) -> set[Source]:
    started: set[Source] = set()
    for latest, unread in checks:
        started = alignment.update(latest, unread)
    return started


def slowest(latest: dict[Source, int | None], unread: set[Source]) -> int | None:
    """The earliest latest event time of the unread partitions; None if one
    has none yet, or no partition has unread messages."""
    times = [latest.get(source) for source in unread]
    if not times or None in times:
        return None
    return min(ts for ts in times if ts is not None)


def test_a_partition_far_ahead_on_two_checks_in_a_row_is_paused() -> None:
    alignment = InputAlignment(SKEW)
    latest = {CALLS: 0, CHATS: 3 * MIN, SURVEYS: 2 * 24 * 60 * MIN}
    unread = {CALLS, CHATS, SURVEYS}

    assert alignment.update(latest, unread) == set()
    assert alignment.paused == set()
    assert alignment.update(latest, unread) == {SURVEYS}
    assert alignment.paused == {SURVEYS}
    assert alignment.skew_ms == 2 * 24 * 60 * MIN
    # Still ahead: still paused, not paused again.
    assert alignment.update(latest, unread) == set()
    assert alignment.paused == {SURVEYS}


def test_a_paused_partition_resumes_once_within_half_the_bound() -> None:
    alignment = InputAlignment(SKEW)
    unread = {CALLS, SURVEYS}
    checked(
        alignment, ({CALLS: 0, SURVEYS: 60 * MIN}, unread), ({CALLS: 0, SURVEYS: 60 * MIN}, unread)
    )
    assert alignment.paused == {SURVEYS}

    alignment.update({CALLS: 54 * MIN, SURVEYS: 60 * MIN}, unread)
    assert alignment.paused == {SURVEYS}, "6 minutes ahead is more than half the bound"
    alignment.update({CALLS: 55 * MIN, SURVEYS: 60 * MIN}, unread)
    assert alignment.paused == set()
    assert alignment.skew_ms == 5 * MIN


def test_a_quiet_partition_that_gets_a_message_pauses_nothing() -> None:
    """Social, quiet since the evening, gets a message: until it is read, its
    latest event time is hours old. It is read before the next check."""
    alignment = InputAlignment(SKEW)
    evening, now = 0, 8 * 60 * MIN
    assert (
        checked(alignment, ({CALLS: now, ("cc.social", 0): evening}, {CALLS, ("cc.social", 0)}))
        == set()
    )
    assert alignment.update({CALLS: now + 1000, ("cc.social", 0): now}, {CALLS}) == set()
    assert alignment.paused == set()


def test_a_partition_with_unread_messages_and_no_event_time_pauses_nothing() -> None:
    """Just assigned, its backlog not read yet: it may hold the oldest events."""
    alignment = InputAlignment(SKEW)
    latest = {CALLS: 0, SURVEYS: 60 * MIN}
    checked(alignment, (latest, {CALLS, SURVEYS}), (latest, {CALLS, SURVEYS}))
    assert alignment.paused == {SURVEYS}

    assert alignment.update({**latest, CHATS: None}, {CALLS, SURVEYS, CHATS}) == set()
    assert alignment.paused == set()
    assert alignment.skew_ms == 0


def test_a_partition_read_to_its_end_is_not_waited_for() -> None:
    """A topic that stopped hours ago holds nothing back."""
    alignment = InputAlignment(SKEW)
    latest = {CALLS: 0, CHATS: 60 * MIN, SURVEYS: 61 * MIN}
    checked(alignment, (latest, {CHATS, SURVEYS}), (latest, {CHATS, SURVEYS}))
    assert alignment.paused == set()
    assert alignment.skew_ms == MIN


def test_a_partition_read_to_its_end_far_ahead_is_paused_too() -> None:
    """With a producer still writing, the surveys, read as fast as they come,
    would otherwise run on while the calls are days behind."""
    alignment = InputAlignment(SKEW)
    latest = {CALLS: 0, CHATS: 3 * MIN, SURVEYS: 2 * 24 * 60 * MIN}
    assert checked(alignment, (latest, {CALLS, CHATS}), (latest, {CALLS, CHATS})) == {SURVEYS}
    # The calls read to their end too: nothing unread, nothing to wait for.
    assert alignment.update(latest, set()) == set()
    assert alignment.paused == set()


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        InputAlignment(0)


@given(st.lists(Check, min_size=1, max_size=12), st.integers(1, 3 * SKEW))
def test_the_input_always_moves_and_only_what_runs_ahead_waits(
    checks: list[tuple[dict[Source, int | None], set[Source]]], max_skew: int
) -> None:
    alignment = InputAlignment(max_skew)
    for latest, unread in checks:
        before = set(alignment.paused)
        started = alignment.update(latest, unread)
        paused = alignment.paused
        assert started == paused - before
        floor = slowest(latest, unread)
        if floor is None:
            assert paused == set()
            continue
        known = {source: ts for source, ts in latest.items() if ts is not None}
        # The slowest partition with unread messages is never paused.
        assert any(known[source] == floor for source in unread - paused)
        for source in paused:
            assert known[source] - floor > max_skew // 2
            if source in started:
                assert known[source] - floor > max_skew
        assert alignment.skew_ms == max(known.values()) - floor


@given(Check, st.integers(1, 3 * SKEW))
def test_what_stays_far_ahead_is_paused_at_the_second_check(
    check: tuple[dict[Source, int | None], set[Source]], max_skew: int
) -> None:
    latest, unread = check
    alignment = InputAlignment(max_skew)
    alignment.update(latest, unread)
    alignment.update(latest, unread)
    floor = slowest(latest, unread)
    if floor is None:
        assert alignment.paused == set()
        return
    assert alignment.paused == {
        source for source, ts in latest.items() if ts is not None and ts - floor > max_skew
    }


def test_while_partitions_are_paused_one_that_runs_ahead_is_paused_at_once() -> None:
    """Read alone at a replay's speed, a light partition crosses days of event
    time between two checks: it waits from the batch that took it past the
    bound, not from the second check after."""
    alignment = InputAlignment(SKEW)
    unread = {CALLS, CHATS, SURVEYS}
    checked(
        alignment,
        ({CALLS: 0, CHATS: 3 * MIN, SURVEYS: 60 * MIN}, unread),
        ({CALLS: 0, CHATS: 3 * MIN, SURVEYS: 60 * MIN}, unread),
    )
    assert alignment.paused == {SURVEYS}

    assert alignment.tighten({CALLS: 1 * MIN, CHATS: 9 * MIN, SURVEYS: 60 * MIN}, unread) == set()
    assert alignment.tighten({CALLS: 2 * MIN, CHATS: 13 * MIN, SURVEYS: 60 * MIN}, unread) == {
        CHATS
    }
    assert alignment.paused == {CHATS, SURVEYS}
    # The next check keeps it paused until it is back within half the bound.
    alignment.update({CALLS: 4 * MIN, CHATS: 13 * MIN, SURVEYS: 60 * MIN}, unread)
    assert alignment.paused == {CHATS, SURVEYS}
    alignment.update({CALLS: 8 * MIN, CHATS: 13 * MIN, SURVEYS: 60 * MIN}, unread)
    assert alignment.paused == {SURVEYS}


def test_tightening_resumes_a_paused_partition_the_others_have_caught_up_with() -> None:
    """The surveys wait; the calls, read alone, pass them: the surveys are the
    slowest now, and move again."""
    alignment = InputAlignment(SKEW)
    unread = {CALLS, SURVEYS}
    checked(
        alignment, ({CALLS: 0, SURVEYS: 60 * MIN}, unread), ({CALLS: 0, SURVEYS: 60 * MIN}, unread)
    )
    assert alignment.tighten({CALLS: 65 * MIN, SURVEYS: 60 * MIN}, unread) == set()
    assert alignment.paused == set()


def test_with_nothing_paused_a_partition_ahead_still_waits_for_the_second_check() -> None:
    """Live input: social, quiet since the evening, gets a message, and is the
    slowest until it is read. Nothing is paused for that moment."""
    alignment = InputAlignment(SKEW)
    evening, now = 0, 8 * 60 * MIN
    latest = {CALLS: now, ("cc.social", 0): evening}
    assert alignment.tighten(latest, {CALLS, ("cc.social", 0)}) == set()
    assert alignment.paused == set()


@given(st.lists(st.tuples(st.booleans(), Check), min_size=1, max_size=16), st.integers(1, 3 * SKEW))
def test_checks_and_tightening_never_pause_the_slowest(
    steps: list[tuple[bool, tuple[dict[Source, int | None], set[Source]]]], max_skew: int
) -> None:
    alignment = InputAlignment(max_skew)
    for is_check, (latest, unread) in steps:
        before = set(alignment.paused)
        if is_check:
            started = alignment.update(latest, unread)
        else:
            started = alignment.tighten(latest, unread)
            assert not started or before, "tightening starts nothing from nothing paused"
        assert started == alignment.paused - before
        floor = slowest(latest, unread)
        if floor is None:
            assert not started
            if is_check:
                assert alignment.paused == set()
            continue
        known = {source: ts for source, ts in latest.items() if ts is not None}
        for source in started:
            assert known[source] - floor > max_skew
        if is_check or before:
            assert any(known[source] == floor for source in unread - alignment.paused)
