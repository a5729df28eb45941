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
"""

from __future__ import annotations

from collections.abc import Hashable


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
