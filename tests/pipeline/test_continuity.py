"""A stage gets every message of a partition, in order, even when the consumer
drops some (streams.pipeline.continuity), and a gap that is in the log is
accepted instead of read forever."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.pipeline.continuity import Continuity, Verdict

TP = ("by-interaction", 1)


class Consumer:
    """A partition's log read by a consumer that loses the messages at the
    offsets in `drops` the first time it fetches them. After a seek, the
    `ahead` messages it had fetched already still come first."""

    def __init__(self, log: list[int], drops: set[int], ahead: int) -> None:
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

    def seek(self, offset: int) -> None:
        for _ in range(self.ahead):
            fetched = self._fetch()
            if fetched is not None:
                self.in_flight.append(fetched)
        self.position = next((i for i, o in enumerate(self.log) if o >= offset), len(self.log))


def take_all(consumer: Consumer, continuity: Continuity) -> list[int]:
    taken = []
    while (offset := consumer.next()) is not None:
        verdict = continuity.check(TP, offset)
        if verdict is Verdict.TAKE:
            taken.append(offset)
        elif verdict is Verdict.SEEK:
            expected = continuity.expected(TP)
            assert expected is not None
            consumer.seek(expected)
    return taken


@given(
    st.lists(st.integers(1, 3), min_size=1, max_size=60),
    st.data(),
    st.integers(0, 5),
)
def test_every_message_is_taken_once_in_order_whatever_the_consumer_drops(
    steps: list[int], data: st.DataObject, ahead: int
) -> None:
    """Offsets with steps above 1 are gaps in the log itself (transaction
    markers): they are accepted. Dropped messages are read again, once a later
    message shows they are missing (the last one is never dropped here: the
    internal topics carry a clock message every second)."""
    log = []
    offset = 0
    for step in steps:
        log.append(offset)
        offset += step
    drops = set(data.draw(st.lists(st.sampled_from(log), max_size=10)))
    drops.discard(log[-1])
    continuity = Continuity()
    continuity.start(TP, 0)
    taken = take_all(Consumer(log, drops, ahead), continuity)
    assert taken == log


def test_a_dropped_message_is_read_again() -> None:
    continuity = Continuity()
    continuity.start(TP, 55)
    verdicts = [continuity.check(TP, o) for o in (55, 56, 57, 60, 61)]
    assert verdicts == [Verdict.TAKE] * 3 + [Verdict.SEEK, Verdict.SKIP]
    assert continuity.expected(TP) == 58
    assert [continuity.check(TP, o) for o in (58, 59, 60, 61)] == [Verdict.TAKE] * 4


def test_the_first_messages_after_an_assignment_dropped_are_read_again() -> None:
    continuity = Continuity()
    continuity.start(TP, 55)
    assert continuity.check(TP, 61) is Verdict.SEEK
    assert continuity.expected(TP) == 55


def test_a_gap_in_the_log_is_accepted_once_the_seek_shows_it() -> None:
    continuity = Continuity()
    continuity.start(TP, 10)
    assert continuity.check(TP, 10) is Verdict.TAKE
    assert continuity.check(TP, 12) is Verdict.SEEK  # 11 is a transaction marker
    assert continuity.check(TP, 12) is Verdict.TAKE  # after the seek to 11
    assert continuity.check(TP, 13) is Verdict.TAKE


def test_a_rebalance_seek_back_is_taken() -> None:
    continuity = Continuity()
    continuity.start(TP, 0)
    for offset in range(10):
        continuity.check(TP, offset)
    assert continuity.check(TP, 4) is Verdict.TAKE
    assert continuity.expected(TP) == 5


def test_without_a_start_the_first_message_sets_the_position() -> None:
    continuity = Continuity()
    assert continuity.check(TP, 40) is Verdict.TAKE
    assert continuity.check(TP, 42) is Verdict.SEEK
    continuity.forget(TP)
    assert not continuity.known(TP)
    assert continuity.check(TP, 90) is Verdict.TAKE
