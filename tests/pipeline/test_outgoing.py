"""A stage's output, coalesced per batch, reaches the board exactly once per
delta, however the batches were cut before and after a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streams.pipeline.outgoing import Outgoing, split_runs
from streams.pipeline.stages import BoardStage, Outbox, applied_before
from tests.pipeline.harness import DictStore
from tests.pipeline.test_redelivery import SETTINGS, STARTED, T0, started

TARGET = BoardStage(SETTINGS, DictStore()).partition_of("call")
SENDERS = ("i0", "i1")


def delta(n: int) -> list[Any]:
    return ["call", "support", "-", T0, STARTED, 1, 1 + n % 3]


def outbox(items: int, offset: int) -> Outbox:
    out = Outbox()
    out.deltas[TARGET] = [delta(offset + i) for i in range(items)]
    out.customers[2] = [["fact", offset]]
    out.watermark = T0 + offset
    return out


Message = tuple[str, int, Outbox]


def stream(sizes: list[int], resume: dict[str, int]) -> list[Message]:
    """Messages of two senders interleaved (sizes[n] deltas for the n-th), from
    each sender's `resume` offset on."""
    messages = []
    for n, size in enumerate(sizes):
        sender, offset = SENDERS[n % 2], n // 2
        if offset >= resume[sender]:
            messages.append((sender, offset, outbox(size, offset)))
    return messages


def batches(messages: list[Message], cuts: list[int]) -> list[list[Message]]:
    out, i = [], 0
    for cut in cuts:
        if i >= len(messages):
            break
        out.append(messages[i : i + cut])
        i += cut
    if i < len(messages):
        out.append(messages[i:])
    return out


def sent(batch: list[Message], limit: int) -> list[dict[str, Any]]:
    outgoing = Outgoing(limit)
    for sender, offset, out in batch:
        outgoing.add(sender, offset, out)
    return [body for _, body in outgoing.delta_messages()]


@given(
    runs=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.integers(1, 9)), max_size=12),
    limit=st.integers(1, 7),
)
def test_split_runs_keeps_every_item_and_its_position(
    runs: list[tuple[int, int, int]], limit: int
) -> None:
    given_runs = [
        [SENDERS[n % 2], n * 10 + step, first, [f"{n}:{first + i}" for i in range(count)]]
        for n, (step, first, count) in enumerate(runs)
    ]
    parts = list(split_runs(given_runs, limit))
    assert all(0 < sum(len(run[3]) for run in part) <= limit for part in parts)

    def positions(runs: list[list[Any]]) -> list[tuple[Any, ...]]:
        return [
            (s, o, first + i, item) for s, o, first, items in runs for i, item in enumerate(items)
        ]

    assert [p for part in parts for p in positions(part)] == positions(given_runs)


@given(
    sizes=st.lists(st.integers(0, 6), min_size=1, max_size=15),
    first_cuts=st.lists(st.integers(1, 5), max_size=8),
    second_cuts=st.lists(st.integers(1, 5), max_size=8),
    limit=st.integers(1, 8),
    second_limit=st.integers(1, 8),
    data=st.data(),
)
def test_a_crash_between_any_two_messages_counts_every_delta_once(
    sizes: list[int],
    first_cuts: list[int],
    second_cuts: list[int],
    limit: int,
    second_limit: int,
    data: st.DataObject,
) -> None:
    """First run: every batch's messages sent, the board receives a prefix of
    them (the crash). The input was committed up to some batch whose output was
    all delivered; the restart reads from there, cut into other batches."""
    first = batches(stream(sizes, dict.fromkeys(SENDERS, 0)), first_cuts)
    messages: list[dict[str, Any]] = []
    delivered_through: list[int] = []  # per batch, the messages its commit waits for
    for batch in first:
        messages += sent(batch, limit)
        delivered_through.append(len(messages))
    crash = data.draw(st.integers(0, len(messages)), label="messages delivered")
    committable = sum(1 for n in delivered_through if n <= crash)
    committed = data.draw(st.integers(0, committable), label="batches committed")
    resume = dict.fromkeys(SENDERS, 0)
    for batch in first[:committed]:
        for sender, offset, _ in batch:
            resume[sender] = offset + 1

    board = BoardStage(SETTINGS, DictStore())
    for body in messages[:crash]:
        board.process(body, T0, TARGET)
    board.flush()
    restarted = BoardStage(SETTINGS, board.store.replayed())
    restarted.adopt(TARGET)
    for batch in batches(stream(sizes, resume), second_cuts):
        for body in sent(batch, second_limit):
            restarted.process(body, T0, TARGET)
    restarted.flush()

    everything = sum(delta(n // 2 + i)[6] for n, size in enumerate(sizes) for i in range(size))
    assert (started(restarted) if everything else 0) == everything


def test_applied_before_counts_the_leading_items_already_applied() -> None:
    assert applied_before(None, 5, 0, 3) == 0
    assert applied_before([4, 9], 5, 0, 3) == 0
    assert applied_before([6, 0], 5, 0, 3) == 3
    assert applied_before([5, 1], 5, 0, 3) == 2
    assert applied_before([5, 1], 5, 2, 3) == 0
    assert applied_before([5, 9], 5, 2, 3) == 3


def test_only_the_last_message_to_a_target_carries_the_clocks() -> None:
    outgoing = Outgoing(limit=2)
    outgoing.add("c3", 10, outbox(3, 10))
    outgoing.add("c1", 4, outbox(2, 11))
    bodies = [body for target, body in outgoing.delta_messages() if target == TARGET]
    clocks = {"c3": T0 + 10, "c1": T0 + 11}
    assert [body["wm"] for body in bodies] == [None, None, clocks]
    assert bodies[1]["d"] == [["c3", 10, 2, [delta(12)]], ["c1", 4, 0, [delta(11)]]]
    facts = list(outgoing.customer_messages())
    assert facts == [(2, {"wm": clocks, "f": [["fact", 10], ["fact", 11]]})]
