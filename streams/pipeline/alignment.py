"""Which input partitions ingest pauses for running ahead in event time.

With the event clock, every clock follows the slowest input partition that
still has unread messages (streams.core.clock). On a backlog (a replay, a
restart after an outage) the Kafka consumer fetches all partitions side by
side, so a light one (surveys are a quarter of the calls) is read days of
event time ahead of the others. All of that waits in memory: interactions
whose other events are still unread, and board buckets the clock has not
reached. It grows with the backlog's length (docs/benchmarks.md, "Memory on a
long replay").

Flink calls the cure watermark alignment: a partition more than `max_skew_ms`
of event time ahead of the slowest one with unread messages stops being
fetched until that one catches up. The slowest is never paused, so the input
always moves. A partition read to its end is paused too when it is that far
ahead: otherwise, with a producer still writing, it would read on as fast as
its messages come while the others are days behind. Pausing holds back only
events the clocks have not reached: the clocks never pass the slowest
partition with unread messages, and a paused one is ahead of it. (An event
more than the lateness out of order in its own partition is the exception:
read after the pause, it can be late.) Live input, read as it comes, has
partitions seconds apart, and nothing is paused.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

Source = tuple[str, int]
"""An input partition: (topic, partition)."""


class InputAlignment:
    """The input partitions to pause, re-decided at every check.

    While nothing is paused, a partition is paused once it was found ahead at
    two checks in a row: a partition quiet for hours that receives a message
    is, for the moment before that message is read, the slowest, and would
    otherwise pause all the others for a check. Once partitions are paused,
    `tighten` pauses the others as soon as they run ahead. A paused one
    resumes when it is back within half the bound, so that it reads a good
    stretch before it is paused again."""

    def __init__(self, max_skew_ms: int) -> None:
        if max_skew_ms <= 0:
            raise ValueError(f"max_skew_ms must be positive, got {max_skew_ms}")
        self.max_skew_ms = max_skew_ms
        self.paused: set[Source] = set()
        self.skew_ms = 0
        """Event time between the furthest-ahead partition and the slowest one
        with unread messages, at the last check (0 when not known)."""
        self._ahead: set[Source] = set()

    def update(
        self, latest: Mapping[Source, int | None], unread: Collection[Source]
    ) -> set[Source]:
        """`latest`: each partition's latest event time read (None: none yet);
        `unread`: the partitions with messages not fetched yet. Returns the
        partitions paused by this check (they were not before)."""
        floor = _floor(latest, unread)
        if floor is None:
            return self._reset()
        known = {source: ts for source, ts in latest.items() if ts is not None}
        self.skew_ms = max(known.values()) - floor
        ahead, held = self._ahead_and_held(known, floor)
        paused = {source for source in ahead if source in self._ahead or source in self.paused}
        paused |= held
        started = paused - self.paused
        self._ahead = ahead
        self.paused = paused
        return started

    def tighten(
        self, latest: Mapping[Source, int | None], unread: Collection[Source]
    ) -> set[Source]:
        """Between two checks, while partitions are paused (a backlog is being
        read): pauses at once a partition more than the bound ahead. Read
        alone at a replay's speed, a light partition crosses days of event
        time within a second; the second check is there for a partition
        quiet for hours, which pauses nothing while nothing is paused. A
        paused one back within half the bound resumes, as at a check, so that
        the slowest is never paused. Returns the partitions paused by it."""
        if not self.paused:
            return set()
        floor = _floor(latest, unread)
        if floor is None:
            return set()
        known = {source: ts for source, ts in latest.items() if ts is not None}
        ahead, held = self._ahead_and_held(known, floor)
        started = ahead - self.paused
        self.paused = held | ahead
        self._ahead |= started
        return started

    def _ahead_and_held(
        self, known: Mapping[Source, int], floor: int
    ) -> tuple[set[Source], set[Source]]:
        """The partitions more than the bound ahead of `floor`, and the paused
        ones still more than half the bound ahead (those stay paused)."""
        ahead = {source for source, ts in known.items() if ts - floor > self.max_skew_ms}
        held = {
            source
            for source in self.paused
            if source in known and known[source] - floor > self.max_skew_ms // 2
        }
        return ahead, held

    def _reset(self) -> set[Source]:
        self.skew_ms = 0
        self._ahead = set()
        self.paused = set()
        return set()


def _floor(latest: Mapping[Source, int | None], unread: Collection[Source]) -> int | None:
    """The latest event time of the slowest partition with unread messages;
    None if none has any, or one has no event time yet (it may hold the oldest
    events of all: nothing is known to be ahead of it)."""
    times = [latest.get(source) for source in unread]
    if not times or None in times:
        return None
    return min(ts for ts in times if ts is not None)
