"""Messages a stage never received: found by their offsets, and read again.

Faust can lose fetched messages around a rebalance: it empties its stream
buffers when it resumes after one, and its fetcher drops records of partitions
it does not count as active yet; its read position has moved past them by
then (seen in the kill-one-of-two fault test: two messages of an interaction
partition, one holding a contact's abandon, never reached the survivor).
Nothing downstream could make up for them.

So every stage checks that each partition's offsets follow on from its
committed offset. On a gap the worker rewinds, as Faust does after a
rebalance: every partition is read again from its committed offset (the
stages recognise what they processed before), and the messages after the
gap, never acknowledged, are not committed meanwhile.

The internal topics are written without transactions or compaction, so their
offsets have no gaps of their own: every message is checked. An input topic
may have some (transaction markers, compaction): only its first message after
an assignment or a rewind is checked against the committed offset (Faust's
recovery is where it loses input). A gap met `REPEATS` times the same way is
in the log, and is accepted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from enum import Enum

REPEATS = 3
"""Times a gap is met, the same way, before it counts as part of the log. (A
message fetched before a rewind may come just after it: meeting a gap twice
can be chance.)"""


class Verdict(Enum):
    TAKE = "take"
    REWIND = "rewind"
    """Messages are missing before this one: read every partition again from
    its committed offset (and drop this one: it comes again)."""


class Continuity:
    def __init__(self) -> None:
        self._expected: dict[Hashable, tuple[int | None, bool]] = {}
        """Per partition: the next offset, and whether it is where a start or a
        rewind put it (no message taken since)."""
        self._gaps: Counter[tuple[Hashable, int, int, bool]] = Counter()
        """Gaps a rewind was made for, and how many times."""

    def start(self, tp: Hashable, offset: int | None) -> None:
        """`tp` is read from `offset` on (its committed offset, after an
        assignment or a rewind); None: from wherever its first message is."""
        self._expected[tp] = (offset, True)

    def forget(self, tp: Hashable) -> None:
        """`tp` was revoked: when it comes back, it starts afresh."""
        self._expected.pop(tp, None)

    def known(self, tp: Hashable) -> bool:
        return tp in self._expected

    def check(self, tp: Hashable, offset: int, every: bool = True) -> Verdict:
        """`every`: the partition's offsets have no gaps of their own (else
        only its first message after a start is checked)."""
        expected, at_start = self._expected.get(tp, (None, True))
        if expected is not None and offset > expected and (every or at_start):
            gap = (tp, expected, offset, at_start)
            self._gaps[gap] += 1
            if self._gaps[gap] < REPEATS:
                return Verdict.REWIND
            del self._gaps[gap]
        # In order; read again (after a rewind or a rebalance: the stages
        # recognise what they processed before); or a gap in the log itself.
        self._expected[tp] = (offset + 1, False)
        return Verdict.TAKE
