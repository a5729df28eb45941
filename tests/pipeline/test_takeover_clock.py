"""A worker taking over a channel's partition reads that channel's backlog from
where the previous owner stopped. The channels it read all along may be hours
of event time ahead (a backfill): their clock must not settle the buckets the
backlog still changes, or a correction in it (an FCR withdrawn by a repeat
contact) would come too late and the totals would stay too high."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from streams.config import Settings
from streams.core.aggregate import COUNT_INDEX, Aggregate
from streams.pipeline.stages import BoardStage
from tests.pipeline.harness import DictStore

SETTINGS = replace(Settings(), clock="event")
SENDERS = ["i0", "c0"]
T0 = 1_767_225_600_000
HOUR = 3_600_000
FCR = COUNT_INDEX["resolved_first_contact"]


def progress(ts: int) -> dict[str, Any]:
    return {"progress": [["cc.events", 0, ts, 0, False]]}


def fcr(sender: str, offset: int, weight: int) -> dict[str, Any]:
    """A delta of one first-contact resolution of a chat at T0."""
    return {"d": [[sender, offset, 0, [["chat", "billing", "-", T0, FCR, 1, weight]]]]}


def heard(sender: str, clock: int) -> dict[str, Any]:
    return {"clock": sender, "wm": clock}


def settled_fcr(board: BoardStage) -> int:
    totals = dict(board.board.settled())
    return totals.get(("chat", "billing", "-"), Aggregate()).count("resolved_first_contact")


def test_a_channel_taken_over_keeps_its_own_clock() -> None:
    chat, call = (BoardStage(SETTINGS, DictStore()).partition_of(c) for c in ("chat", "call"))
    assert chat != call, "the two channels must live on different partitions"

    # The previous owner of chat's partition applied the FCR, then died.
    dead = BoardStage(SETTINGS, DictStore(), senders=SENDERS)
    dead.adopt(chat)
    dead.process(progress(T0), T0, chat)
    dead.process(fcr("i0", 1, +1), T0, chat)
    dead.flush()

    # The survivor read call's partition all along: its clock is hours ahead.
    survivor = BoardStage(SETTINGS, dead.store.replayed(), senders=SENDERS)
    survivor.adopt(call)
    survivor.process(progress(T0 + 3 * HOUR), T0, call)
    for sender in SENDERS:
        survivor.process(heard(sender, T0 + 3 * HOUR), T0, call)
    assert survivor.tick(T0) == T0 + 3 * HOUR

    # It takes chat over; the backlog there withdraws the FCR, then catches up.
    survivor.adopt(chat)
    survivor.tick(T0)
    survivor.process(fcr("c0", 5, -1), T0, chat)
    for sender in SENDERS:
        survivor.process(heard(sender, T0 + 3 * HOUR), T0, chat)
    survivor.tick(T0)

    assert settled_fcr(survivor) == 0
    assert not survivor.stats.dropped_retractions
    assert survivor.board.clocks["chat"] == survivor.board.clocks["call"] == T0 + 3 * HOUR


def test_each_channel_is_reported_at_its_own_clock() -> None:
    board = BoardStage(SETTINGS, DictStore(), senders=SENDERS)
    chat, call = board.partition_of("chat"), board.partition_of("call")
    board.process(progress(T0 + 2 * HOUR), T0, chat)
    for partition, clock in ((chat, T0 + HOUR), (call, T0)):
        board.adopt(partition)
        for sender in SENDERS:
            board.process(heard(sender, clock), T0, partition)
    board.process(fcr("i0", 1, +1), T0, chat)
    board.process({"d": [["i0", 1, 0, [["call", "billing", "-", T0, FCR, 1, 1]]]]}, T0, call)
    assert board.tick(T0) == T0, "the board's clock: the channel furthest behind"
    ends = {(r["channel"], r["window"]): r["window_end"] for r in board.board.records(board.labels)}
    for window in ("5m", "1h"):
        assert ends[("chat", window)] > ends[("call", window)]


def test_no_snapshot_clock_while_a_partition_held_has_none() -> None:
    """Its channels would vanish from Redis and cc.kpis for a snapshot or two."""
    board = BoardStage(SETTINGS, DictStore(), senders=SENDERS)
    chat, call = board.partition_of("chat"), board.partition_of("call")
    board.process(progress(T0), T0, chat)
    board.adopt(chat)
    board.adopt(call)
    for sender in SENDERS:
        board.process(heard(sender, T0), T0, chat)
    assert board.tick(T0) is None
    assert board.board.clocks["chat"] == T0, "chat's windows move on meanwhile"
    for sender in SENDERS:
        board.process(heard(sender, T0), T0, call)
    assert board.tick(T0) == T0


def owner_at(clock: int, store: DictStore | None = None) -> tuple[BoardStage, int]:
    """A board that applied the FCR on chat's partition and stands at `clock`,
    its state committed."""
    board = BoardStage(SETTINGS, store or DictStore(), senders=SENDERS)
    chat = board.partition_of("chat")
    board.adopt(chat)
    board.process(progress(clock), T0, chat)
    board.process(fcr("i0", 1, +1), T0, chat)
    for sender in SENDERS:
        board.process(heard(sender, clock), T0, chat)
    assert board.tick(T0) == clock
    board.flush()
    return board, chat


def chat_records(board: BoardStage) -> list[dict[str, Any]]:
    return sorted(
        (r for r in board.board.records(board.labels) if r["channel"] == "chat"),
        key=lambda r: (r["queue"], r["network"], r["window"]),
    )


def test_a_partition_taken_over_is_served_at_the_clock_it_was_committed_at() -> None:
    """A restart or a rebalance in a quiet hour: the new owner's senders have
    read nothing since, so they report no clock. The channel is served, and
    snapshotted, as its last owner left it, not withheld until traffic resumes."""
    previous, chat = owner_at(T0 + HOUR)
    taking_over = BoardStage(SETTINGS, previous.store.replayed(), senders=SENDERS)
    taking_over.adopt(chat)
    assert taking_over.tick(T0) == T0 + HOUR
    assert chat_records(taking_over) == chat_records(previous)


def test_a_partition_taken_over_never_goes_back_to_an_earlier_clock() -> None:
    """Its new senders may have read only a few late events again, whose times
    are long past: the windows stay where the state was committed."""
    previous, chat = owner_at(T0 + 2 * HOUR)
    taking_over = BoardStage(SETTINGS, previous.store.replayed(), senders=SENDERS)
    taking_over.adopt(chat)
    taking_over.process(progress(T0), T0, chat)
    for sender in SENDERS:
        taking_over.process(heard(sender, T0), T0, chat)
    assert taking_over.tick(T0) == T0 + 2 * HOUR
    assert chat_records(taking_over) == chat_records(previous)


def test_a_clock_that_moved_without_deltas_is_committed() -> None:
    board, chat = owner_at(T0 + HOUR)
    for sender in SENDERS:
        board.process(heard(sender, T0 + 2 * HOUR), T0, chat)
    board.process(progress(T0 + 2 * HOUR), T0, chat)
    assert board.tick(T0) == T0 + 2 * HOUR
    board.flush()
    assert board.store.restore(chat) == {"applied": {"i0": [1, 0]}, "clock": T0 + 2 * HOUR}


def test_a_mark_from_before_the_clock_was_kept_still_gives_the_positions() -> None:
    """Changelogs written by earlier versions: positions alone, no clock."""
    previous, chat = owner_at(T0 + HOUR)
    store = previous.store.replayed()
    store.marks[chat] = store.marks[chat]["applied"]
    taking_over = BoardStage(SETTINGS, store, senders=SENDERS)
    taking_over.adopt(chat)
    assert taking_over.tick(T0) is None, "no clock until its senders report one"
    taking_over.process(fcr("i0", 1, +1), T0, chat)
    assert taking_over.stats.redelivered["interactions"] == 1


def test_a_correction_taken_over_still_reaches_a_bucket_the_previous_owner_settled() -> None:
    """The channel is served at the committed clock, but its settling waits for
    the new owner's senders: a withdrawn FCR in the backlog, read before they
    report that clock, is not too late."""
    previous, chat = owner_at(T0 + 3 * HOUR)
    assert settled_fcr(previous) == 1
    taking_over = BoardStage(SETTINGS, previous.store.replayed(), senders=SENDERS)
    taking_over.adopt(chat)
    assert taking_over.tick(T0) == T0 + 3 * HOUR
    taking_over.process(fcr("c0", 5, -1), T0, chat)
    taking_over.process(progress(T0 + 3 * HOUR), T0, chat)
    for sender in SENDERS:
        taking_over.process(heard(sender, T0 + 3 * HOUR), T0, chat)
    taking_over.tick(T0)
    assert settled_fcr(taking_over) == 0
    assert not taking_over.stats.dropped_retractions
