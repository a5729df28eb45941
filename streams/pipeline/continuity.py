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

The internal topics are written without transactions or compaction, so their
offsets have no gaps of their own: every message is checked. An input topic
may have many (a transaction marker after every transaction): only its first
message after an assignment is checked against the committed offset, as
Faust's recovery is where it loses input.
"""

from __future__ import annotations

from collections.abc import Hashable


class Continuity:
    def __init__(self) -> None:
        self._expected: dict[Hashable, tuple[int | None, bool]] = {}
        """Per partition: the next offset, and whether it is where a start put
        it (no message taken since)."""

    def start(self, tp: Hashable, offset: int | None) -> None:
        """`tp` is read from `offset` on (its committed offset, after an
        assignment); None: from wherever its first message is."""
        self._expected[tp] = (offset, True)

    def forget(self, tp: Hashable) -> None:
        """`tp` was revoked: when it comes back, it starts afresh."""
        self._expected.pop(tp, None)

    def known(self, tp: Hashable) -> bool:
        return tp in self._expected

    def missing(self, tp: Hashable, offset: int, every: bool = True) -> range:
        """The offsets before `offset` that never came (empty if none), to be
        read before it; `offset` is taken. `every`: the partition's offsets
        have no gaps of their own (else only its first message after a start
        is checked)."""
        expected, at_start = self._expected.get(tp, (None, True))
        self._expected[tp] = (max(offset + 1, expected or 0), False)
        if expected is not None and offset > expected and (every or at_start):
            return range(expected, offset)
        return range(0)
