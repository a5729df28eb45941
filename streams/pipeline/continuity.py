"""Messages a stage never received: found by their offsets.

Faust can lose fetched messages around a rebalance: it empties its stream
buffers when it resumes after one, and its fetcher drops records of partitions
it does not count as active yet; its read position has moved past them by
then (seen in the kill-one-of-two fault test: two messages of an interaction
partition, one holding a contact's abandon, never reached the survivor).
Nothing downstream could make up for them.

So every stage checks that each partition's offsets follow on from its
committed offset, and reads a missing range from the log before the message
that showed it (streams.pipeline.refetch); the messages after it are not
acknowledged before the missing ones, so offsets are never committed past a
message that was not processed.

Every message is checked, until a missing range comes back empty from the
log: that partition's offsets have gaps of their own (transaction markers
after every transaction, compaction, retention), and from then on only its
first message after an assignment is checked against the committed offset,
as Faust's recovery is where it loses most. The internal topics and inputs
from idempotent producers have no gaps of their own, and stay checked
message by message.

A loss at a partition's end shows no gap until the partition's next message,
which may never come: the last messages of a restart's backlog were seen to
wait there forever, holding the event clocks. Every internal partition gets a
report every second; an input partition gets nothing, so one whose log ends
past the last message ingest processed, and whose position stays put for a
while, is `Stalls`, and its missing messages are read from the log too. A
partition paused for running ahead in event time delivers nothing by design;
its wait runs only once the consumer has handed on everything up to its end
(`waiting`).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping

STALL_S = 10.0
"""How long an input partition with unread messages may deliver nothing before
they are read from the log (`Stalls`)."""


class Continuity:
    def __init__(self) -> None:
        self._expected: dict[Hashable, tuple[int | None, bool]] = {}
        """Per partition: the next offset, and whether it is where a start put
        it (no message taken since)."""
        self._gappy: set[Hashable] = set()
        """Partitions whose logs have gaps of their own."""

    def start(self, tp: Hashable, offset: int | None) -> None:
        """`tp` is read from `offset` on (its committed offset, after an
        assignment); None: from wherever its first message is."""
        self._expected[tp] = (offset, True)

    def forget(self, tp: Hashable) -> None:
        """`tp` was revoked: when it comes back, it starts afresh."""
        self._expected.pop(tp, None)

    def known(self, tp: Hashable) -> bool:
        return tp in self._expected

    def passed(self, tp: Hashable, offset: int) -> None:
        """The offsets of `tp` before `offset` were read from its log."""
        expected, _ = self._expected.get(tp, (None, True))
        self._expected[tp] = (max(offset, expected or 0), False)

    def next_offset(self, tp: Hashable) -> int | None:
        """The offset `tp`'s next message should have (None: not known)."""
        return self._expected.get(tp, (None, True))[0]

    def has_gaps(self, tp: Hashable) -> None:
        """A range missing from `tp` came back empty from its log: its offsets
        have gaps of their own."""
        self._gappy.add(tp)

    def missing(self, tp: Hashable, offset: int) -> range:
        """The offsets before `offset` that never came (empty if none), to be
        read before it; `offset` is taken."""
        expected, at_start = self._expected.get(tp, (None, True))
        self._expected[tp] = (max(offset + 1, expected or 0), False)
        if expected is not None and offset > expected and (at_start or tp not in self._gappy):
            return range(expected, offset)
        return range(0)


class Stalls:
    """Partitions with unread messages whose position (an offset that moves as
    they are processed) stays the same for `after_s` seconds: what Faust lost
    at their end (the module docstring)."""

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self._since: dict[Hashable, tuple[int | None, float]] = {}
        """Per partition behind: its position, and since when it is."""

    def stalled(self, behind: Mapping[Hashable, int | None], now_s: float) -> list[Hashable]:
        """`behind`: each partition with unread messages, and its position
        (None: none processed since its assignment). Those stalled wait `after_s`
        again before they count as stalled once more."""
        since: dict[Hashable, tuple[int | None, float]] = {}
        stalled = []
        for tp, offset in behind.items():
            last = self._since.get(tp)
            if last is None or last[0] != offset:
                since[tp] = (offset, now_s)
            elif now_s - last[1] >= self.after_s:
                stalled.append(tp)
                since[tp] = (offset, now_s)
            else:
                since[tp] = last
        self._since = since
        return stalled


def waiting(
    unprocessed: Iterable[Hashable],
    paused: Collection[Hashable],
    handed_on: Mapping[Hashable, int],
    ends: Mapping[Hashable, int],
) -> list[Hashable]:
    """The partitions of `unprocessed` whose stall wait runs. A paused one's
    runs only if the consumer has handed on its messages up to its end
    (`handed_on`: the offset after the last one it handed on): whatever ingest
    has not processed of it then was lost, and resuming it would fetch nothing.
    Were every paused partition's wait stopped instead, tails lost on several
    partitions at once were read one after the other, a wait each, as
    alignment released them one at a time."""
    return [
        tp
        for tp in unprocessed
        if tp not in paused or (tp in handed_on and tp in ends and handed_on[tp] >= ends[tp])
    ]
