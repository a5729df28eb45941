"""A delta message sent again (a stage re-processing its input after a crash, or
a rebalance) is recognised by its sender, offset and chunk, before and after a
restart, and never counted twice."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from streams.config import Settings
from streams.core.aggregate import COUNT_INDEX
from streams.pipeline.stages import BoardStage
from tests.pipeline.harness import DictStore

SETTINGS = replace(Settings(), clock="event")
T0 = 1_767_225_600_000
STARTED = COUNT_INDEX["started"]


def deltas(sender: str, offset: int, chunk: int, weight: int = 1) -> dict[str, Any]:
    return {"d": [["call", "support", "-", T0, STARTED, 1, weight]], "src": [sender, offset, chunk]}


def started(board: BoardStage) -> int:
    board.board.advance(T0 + 1_000)
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
