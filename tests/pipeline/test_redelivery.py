"""A delta message sent again (a stage re-processing its input after a crash, or
a rebalance) is recognised by its sender, offset and index, before and after a
restart, and never counted twice."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from streams.config import NO_NETWORK, Settings
from streams.core.aggregate import COUNT_INDEX
from streams.pipeline.stages import BoardStage, Customers, Outbox
from tests.pipeline.harness import DictStore

SETTINGS = replace(Settings(), clock="event")
T0 = 1_767_225_600_000
STARTED = COUNT_INDEX["started"]


def deltas(sender: str, offset: int, index: int, weight: int = 1) -> dict[str, Any]:
    """A message with one delta: the `index`-th of the message at `offset`."""
    return {"d": [[sender, offset, index, [["call", "support", "-", T0, STARTED, 1, weight]]]]}


def started(board: BoardStage) -> int:
    board.board.advance(T0 + 1_000, ["call"])
    records = board.board.records(board.labels)
    return max(r["counts"]["started"] for r in records if r["queue"] == "support")


def test_a_repeated_message_is_applied_once() -> None:
    board = BoardStage(SETTINGS, DictStore())
    for message in (deltas("i0", 7, 0), deltas("i0", 7, 0), deltas("i0", 7, 1), deltas("i0", 6, 3)):
        board.process(message, T0, partition=1)
    board.flush()
    assert started(board) == 2
    assert board.stats.redelivered["interactions"] == 2


def test_senders_and_partitions_are_told_apart() -> None:
    board = BoardStage(SETTINGS, DictStore())
    for message, partition in (
        (deltas("i0", 7, 0), 1),
        (deltas("c0", 7, 0), 1),
        (deltas("i0", 7, 0), 2),
    ):
        board.process(message, T0, partition=partition)
    board.flush()
    assert started(board) == 3


def test_after_a_restart_the_positions_come_back_with_the_state() -> None:
    store = DictStore()
    board = BoardStage(SETTINGS, store)
    partition = board.partition_of("call")
    board.process(deltas("i0", 7, 0), T0, partition)
    board.flush()
    restarted = BoardStage(SETTINGS, store.replayed())
    restarted.adopt(partition)
    restarted.process(deltas("i0", 7, 0), T0, partition)
    restarted.process(deltas("i0", 8, 0), T0, partition)
    restarted.flush()
    assert started(restarted) == 2


def test_a_customers_message_read_again_meets_the_clock_it_met_before() -> None:
    """Its clock decides which contacts are settled, so it decides the deltas:
    the partition's clock is committed with its state and comes back with it."""
    store = DictStore()
    senders = ["i0", "i1"]
    first = Customers(SETTINGS, store, senders=senders)
    partition = 1
    first.adopt(partition)
    for sender, wm in (("i0", T0 + 60_000), ("i1", T0 + 30_000)):
        first.process(partition, {"wm": {sender: wm}, "f": []}, Outbox(), T0)
    store.commit(first.marks())
    assert first.marks() == {}, "nothing read since"
    committed = store.replayed()  # what a crash right after this commit leaves
    facts = [
        "ca-1",
        "cu-1",
        None,
        T0,
        ["call", "support", NO_NETWORK],
        [[T0 + 5_000, True, False, False]],
    ]
    sent_first = Outbox()
    first.process(partition, {"wm": {"i0": T0 + 90_000}, "f": [facts]}, sent_first, T0)

    restarted = Customers(SETTINGS, committed, senders=senders)
    restarted.adopt(partition)
    assert restarted.clock(partition, T0) == T0 + 30_000
    sent_again = Outbox()
    restarted.process(partition, {"wm": {"i0": T0 + 90_000}, "f": [facts]}, sent_again, T0)
    assert sent_again.watermark == sent_first.watermark == T0 + 30_000
    assert sent_again.deltas == sent_first.deltas
    assert sent_first.deltas
