"""Messages a stage never received: found by their offsets, and read again.

Faust can lose fetched messages around a rebalance: its fetcher drops records
of partitions it does not count as active yet, or stops yielding a fetched
batch half way when the consumer generation changes, and its read position has
moved past them by then (seen in the kill-one-of-two fault test: two messages
of an interaction partition, one holding a contact's abandon, never reached
the survivor). Nothing downstream could make up for them.

So every stage checks that each partition's offsets follow on. On a gap it
seeks the partition back to the first missing offset and skips what comes
before that offset does: messages already fetched past the gap come again
after the seek, in order. A gap that is really in the log (a transaction
marker or compaction in an input topic) shows itself when the messages after
it come a second time: it is then accepted.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    TAKE = "take"
    SEEK = "seek"
    """A gap: seek the partition back to `Continuity.expected(tp)`, skip this one."""
    SKIP = "skip"
    """Fetched past the gap before the seek: it comes again."""


@dataclass(slots=True)
class _Position:
    expected: int | None
    """The next offset in order; None: take whatever comes first."""
    skipped: int | None = None
    """While a seek is pending: the highest offset skipped since."""


class Continuity:
    def __init__(self) -> None:
        self._positions: dict[Hashable, _Position] = {}

    def start(self, tp: Hashable, offset: int | None) -> None:
        """`tp` is read from `offset` on (its committed offset after an
        assignment); None: from wherever its first message is."""
        self._positions[tp] = _Position(offset)

    def forget(self, tp: Hashable) -> None:
        """`tp` was revoked: when it comes back, it starts afresh."""
        self._positions.pop(tp, None)

    def known(self, tp: Hashable) -> bool:
        return tp in self._positions

    def expected(self, tp: Hashable) -> int | None:
        position = self._positions.get(tp)
        return None if position is None else position.expected

    def check(self, tp: Hashable, offset: int) -> Verdict:
        position = self._positions.get(tp)
        if position is None:
            position = self._positions[tp] = _Position(None)
        expected = position.expected
        if expected is None or offset <= expected:
            # In order, or read again (a seek back after a rebalance): the
            # stages recognise what they processed before.
            position.expected = offset + 1
            position.skipped = None
            return Verdict.TAKE
        if position.skipped is None:
            position.skipped = offset
            return Verdict.SEEK
        if offset > position.skipped:
            position.skipped = offset
            return Verdict.SKIP
        # The seek took effect and the missing offsets did not come: the log
        # has no messages there.
        position.expected = offset + 1
        position.skipped = None
        return Verdict.TAKE
