"""The pipeline's clock: wall time, or an event-time watermark over partitions.

The watermark is the minimum, over the input partitions that still have data,
of the latest event time seen on each; a partition that has not moved for the
idle timeout stops holding it back. When every partition is idle (the input is
drained) it is the largest event time seen. It never goes backwards.

A partition known to have data but no event time yet (its backlog not read yet,
e.g. right after a start or a rebalance) stops the watermark where it is: it
may hold the oldest events of all.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, Generic, TypeVar

Source = TypeVar("Source", bound=Hashable)
"""What a watermark is taken over: the pipeline's are (topic, partition) pairs."""


class Watermark(Generic[Source]):
    __slots__ = ("_held", "_idle_ms", "_last", "_pending", "_seen", "_value")

    def __init__(self, idle_timeout_ms: int) -> None:
        self._idle_ms = idle_timeout_ms
        self._seen: dict[Source, int] = {}
        self._last: dict[Source, int] = {}
        self._pending: dict[Source, int] = {}
        self._held: set[Source] = set()
        self._value: int | None = None

    def observe(self, source: Source, ts_ms: int, wall_ms: int) -> None:
        """An event time read from `source` (a topic partition) at wall time `wall_ms`."""
        self._pending.pop(source, None)
        if ts_ms > self._seen.get(source, -1):
            self._seen[source] = ts_ms
            self._last[source] = wall_ms

    def touch(self, source: Source, wall_ms: int) -> None:
        """`source` delivered data (maybe only older events) or has data waiting:
        it is not idle."""
        if source in self._seen:
            self._last[source] = wall_ms
        else:
            self._pending[source] = wall_ms

    def report(
        self, source: Source, ts_ms: int | None, last_wall_ms: int, behind: bool = False
    ) -> None:
        """Take a source's position as measured elsewhere (another worker's ingest);
        `ts_ms` None: it has data but no event time yet. A source last reported
        `behind` (unread messages) never counts as idle: if its reader died, the
        watermark waits for the partition's next owner instead of leaving its
        backlog behind as late."""
        if behind:
            self._held.add(source)
        else:
            self._held.discard(source)
        if ts_ms is None:
            self._pending[source] = last_wall_ms
            return
        self._pending.pop(source, None)
        self._seen[source] = ts_ms
        self._last[source] = last_wall_ms

    def forget(self, source: Source) -> None:
        """The partition moved to another worker."""
        self._seen.pop(source, None)
        self._last.pop(source, None)
        self._pending.pop(source, None)
        self._held.discard(source)

    def latest(self, source: Source) -> int | None:
        """The latest event time seen on `source`."""
        return self._seen.get(source)

    def sources(self) -> dict[Source, tuple[int, int]]:
        """source -> (latest event time, wall time it last delivered)."""
        return {src: (ts, self._last[src]) for src, ts in self._seen.items()}

    def pending(self) -> dict[Source, int]:
        """source -> wall time it was last known to have data, for sources
        without an event time yet."""
        return dict(self._pending)

    def holding(self, wall_ms: int) -> list[Source]:
        """The sources the watermark waits for now: those with data but no
        event time yet, or else the active one furthest behind (for a log
        line when the clock stops moving)."""
        waiting = [src for src, last in self._pending.items() if self._holds(src, last, wall_ms)]
        if waiting or not self._seen:
            return sorted(waiting, key=repr)
        active = {
            src: ts for src, ts in self._seen.items() if self._holds(src, self._last[src], wall_ms)
        }
        return [min(active, key=lambda src: (active[src], repr(src)))] if active else []

    def _holds(self, src: Source, last_wall_ms: int, wall_ms: int) -> bool:
        """`src` counts now: it delivered within the idle timeout, or has unread data."""
        return wall_ms - last_wall_ms < self._idle_ms or src in self._held

    def value(self, wall_ms: int) -> int | None:
        if not self._seen or any(
            self._holds(src, last, wall_ms) for src, last in self._pending.items()
        ):
            return self._value
        active = [
            ts for src, ts in self._seen.items() if self._holds(src, self._last[src], wall_ms)
        ]
        candidate = min(active) if active else max(self._seen.values())
        if self._value is None or candidate > self._value:
            self._value = candidate
        return self._value


class SenderClocks:
    """The clock of a stage that hears from a known set of upstream senders
    (partitions of the previous stage): the lowest clock any of them reported,
    and none until every one has reported. Clocks travel in-band, behind the
    data they cover, so this clock never runs ahead of data still on its way;
    a sender that goes quiet holds it until its partition's new owner reports."""

    __slots__ = ("_clocks", "_value")

    def __init__(self, senders: Iterable[str]) -> None:
        self._clocks: dict[str, int | None] = dict.fromkeys(senders)
        self._value: int | None = None

    def __bool__(self) -> bool:
        return bool(self._clocks)

    def report(self, sender: str, clock_ms: int | None) -> None:
        if clock_ms is None or sender not in self._clocks:
            return
        current = self._clocks[sender]
        if current is None or clock_ms > current:
            self._clocks[sender] = clock_ms

    def to_wire(self) -> list[Any]:
        """[clock per sender, value]: what `from_wire` restores."""
        return [self._clocks, self.value()]

    @classmethod
    def from_wire(cls, senders: Iterable[str], wire: list[Any] | None) -> SenderClocks:
        """Clocks saved with a stage's state: a message processed again after a
        crash or a rebalance then meets the clock it met the first time. Senders
        no longer configured are dropped; new ones start unheard."""
        clocks = cls(senders)
        if wire is not None:
            saved, clocks._value = wire
            for sender, clock_ms in saved.items():
                if sender in clocks._clocks:
                    clocks._clocks[sender] = clock_ms
        return clocks

    def holding(self) -> list[str]:
        """The senders this clock waits for: those not heard yet, or else the
        one furthest behind."""
        unheard = [sender for sender, clock in self._clocks.items() if clock is None]
        if unheard or not self._clocks:
            return unheard
        return [min(self._clocks, key=lambda sender: (self._clocks[sender], sender))]

    def value(self) -> int | None:
        clocks = list(self._clocks.values())
        if clocks and None not in clocks:
            lowest = min(c for c in clocks if c is not None)
            if self._value is None or lowest > self._value:
                self._value = lowest
        return self._value
