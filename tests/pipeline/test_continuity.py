"""A stage gets every message of a partition, in order, even when the consumer
drops some (streams.pipeline.continuity), and a gap that is in the log is
accepted instead of read forever."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.pipeline.continuity import REPEATS, Continuity, Verdict

TP = ("by-interaction", 1)


class Consumer:
    """A partition's log read by a consumer that loses the messages at the
    offsets in `drops` the first time it fetches them. A rewind empties its
    buffers and reads again from the committed offset; `ahead`: whether one
    message it was handing over at that moment still comes first."""

    def __init__(self, log: list[int], drops: set[int], ahead: bool) -> None:
        self.log = log
        self.drops = set(drops)
        self.ahead = ahead
        self.position = 0
        self.in_flight: list[int] = []

    def _fetch(self) -> int | None:
        while self.position < len(self.log):
            offset = self.log[self.position]
            self.position += 1
            if offset in self.drops:
                self.drops.discard(offset)
                continue
            return offset
        return None

    def next(self) -> int | None:
        return self.in_flight.pop(0) if self.in_flight else self._fetch()

    def rewind(self, committed: int) -> None:
        self.in_flight = []
        if self.ahead and (fetched := self._fetch()) is not None:
            self.in_flight.append(fetched)
        self.position = next((i for i, o in enumerate(self.log) if o >= committed), len(self.log))


def take_all(consumer: Consumer, continuity: Continuity, commits: list[bool]) -> list[int]:
    """Offsets taken; after each one taken, committed or not (`commits`, cycled)."""
    taken: list[int] = []
    committed = consumer.log[0]
    while (offset := consumer.next()) is not None:
        assert len(taken) < 50 * len(consumer.log), "no progress"
        if continuity.check(TP, offset) is Verdict.TAKE:
            taken.append(offset)
            if commits[len(taken) % len(commits)]:
                committed = offset + 1
        else:
            consumer.rewind(committed)
            continuity.start(TP, committed)
    return taken


@given(
    st.lists(st.integers(1, 3), min_size=1, max_size=60),
    st.data(),
    st.booleans(),
    st.lists(st.booleans(), min_size=1, max_size=3).filter(any),
)
def test_every_message_is_taken_in_order_whatever_the_consumer_drops(
    steps: list[int], data: st.DataObject, ahead: bool, commits: list[bool]
) -> None:
    """Offsets with steps above 1 are gaps in the log itself (transaction
    markers): they are accepted. Dropped messages are read again, once a later
    message shows they are missing (the last one is never dropped here: the
    internal topics carry a clock message every second). A message taken again
    after a rewind is one the stages recognise. The committed offset moves on
    at least every third message taken (the stages commit every 0.5 s)."""
    log = []
    offset = 0
    for step in steps:
        log.append(offset)
        offset += step
    drops = set(data.draw(st.lists(st.sampled_from(log), max_size=10)))
    drops.discard(log[-1])
    continuity = Continuity()
    continuity.start(TP, 0)
    taken = take_all(Consumer(log, drops, ahead), continuity, commits)
    assert list(dict.fromkeys(taken)) == log
    for i, offset in enumerate(taken):
        assert all(o in taken[:i] for o in log if o < offset), "taken past a missing one"


def test_a_dropped_message_asks_for_a_rewind() -> None:
    continuity = Continuity()
    continuity.start(TP, 55)
    verdicts = [continuity.check(TP, o) for o in (55, 56, 57, 60)]
    assert verdicts == [Verdict.TAKE] * 3 + [Verdict.REWIND]
    continuity.start(TP, 56)  # the committed offset
    assert [continuity.check(TP, o) for o in (56, 57, 58, 59, 60)] == [Verdict.TAKE] * 5


def test_the_first_messages_after_an_assignment_dropped_ask_for_a_rewind() -> None:
    continuity = Continuity()
    continuity.start(TP, 55)
    assert continuity.check(TP, 61) is Verdict.REWIND


def test_a_gap_in_the_log_is_accepted_once_rewinds_show_it() -> None:
    continuity = Continuity()
    continuity.start(TP, 10)
    assert continuity.check(TP, 10) is Verdict.TAKE
    for _ in range(REPEATS - 1):
        assert continuity.check(TP, 12) is Verdict.REWIND  # 11: a transaction marker
        continuity.start(TP, 10)
        assert continuity.check(TP, 10) is Verdict.TAKE
    assert continuity.check(TP, 12) is Verdict.TAKE
    assert continuity.check(TP, 13) is Verdict.TAKE


def test_an_input_partition_is_checked_only_after_a_start() -> None:
    """Its offsets can have gaps of their own; Faust loses input in its recovery."""
    continuity = Continuity()
    continuity.start(TP, 213)
    assert continuity.check(TP, 484, every=False) is Verdict.REWIND
    continuity.start(TP, 213)
    assert continuity.check(TP, 213, every=False) is Verdict.TAKE
    assert continuity.check(TP, 215, every=False) is Verdict.TAKE


def test_messages_read_again_are_taken() -> None:
    continuity = Continuity()
    continuity.start(TP, 0)
    for offset in range(10):
        continuity.check(TP, offset)
    assert continuity.check(TP, 4) is Verdict.TAKE
    assert continuity.check(TP, 5) is Verdict.TAKE


def test_without_a_start_the_first_message_sets_the_position() -> None:
    continuity = Continuity()
    assert continuity.check(TP, 40) is Verdict.TAKE
    assert continuity.check(TP, 42) is Verdict.REWIND
    continuity.forget(TP)
    assert not continuity.known(TP)
    assert continuity.check(TP, 90) is Verdict.TAKE
