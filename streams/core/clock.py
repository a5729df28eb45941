"""The pipeline's clock: wall time, or an event-time watermark over partitions.

The watermark is the minimum, over the input partitions that still have data,
of the latest event time seen on each; a partition that has not moved for the
idle timeout stops holding it back. When every partition is idle (the input is
drained) it is the largest event time seen. It never goes backwards.
"""

from __future__ import annotations

from collections.abc import Hashable


class Watermark:
    __slots__ = ("_idle_ms", "_last", "_seen", "_value")

    def __init__(self, idle_timeout_ms: int) -> None:
        self._idle_ms = idle_timeout_ms
        self._seen: dict[Hashable, int] = {}
        self._last: dict[Hashable, int] = {}
        self._value: int | None = None

    def observe(self, source: Hashable, ts_ms: int, wall_ms: int) -> None:
        """An event time read from `source` (a topic partition) at wall time `wall_ms`."""
        if ts_ms > self._seen.get(source, -1):
            self._seen[source] = ts_ms
            self._last[source] = wall_ms

    def touch(self, source: Hashable, wall_ms: int) -> None:
        """`source` delivered data (maybe only older events): it is not idle."""
        if source in self._seen:
            self._last[source] = wall_ms

    def report(self, source: Hashable, ts_ms: int, last_wall_ms: int) -> None:
        """Take a source's position as measured elsewhere (another worker's ingest)."""
        self._seen[source] = ts_ms
        self._last[source] = last_wall_ms

    def forget(self, source: Hashable) -> None:
        """The partition moved to another worker."""
        self._seen.pop(source, None)
        self._last.pop(source, None)

    def sources(self) -> dict[Hashable, tuple[int, int]]:
        """source -> (latest event time, wall time it last delivered)."""
        return {src: (ts, self._last[src]) for src, ts in self._seen.items()}

    def value(self, wall_ms: int) -> int | None:
        if not self._seen:
            return self._value
        active = [ts for src, ts in self._seen.items() if wall_ms - self._last[src] < self._idle_ms]
        candidate = min(active) if active else max(self._seen.values())
        if self._value is None or candidate > self._value:
            self._value = candidate
        return self._value
