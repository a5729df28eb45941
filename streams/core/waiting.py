"""The contacts in the queue, by key: what the live gauges (queue now, oldest
waiting, at risk) are read from, every second, for every key.

Grouped by key so that a reading is a pass over each key's start times in C
(`min`, a generator) instead of a Python loop over every waiting contact:
with the benchmark's backlog of emails that loop took an eighth of a
worker's CPU (docs/benchmarks.md, "CPU per event and the state held")."""

from __future__ import annotations

from collections.abc import Callable

from streams.core.contribution import Key
from streams.core.record import Live


class Waiting:
    """Each waiting contact's key and start time (ms)."""

    def __init__(self) -> None:
        self._key_of: dict[str, Key] = {}
        self._starts: dict[Key, dict[str, int]] = {}

    def __len__(self) -> int:
        return len(self._key_of)

    def wait(self, iid: str, key: Key, start_ms: int) -> None:
        """`iid` waits under `key` since `start_ms`, whatever it was before (a
        transfer moves it to another queue)."""
        before = self._key_of.get(iid)
        if before is not None and before != key:
            self._forget(iid, before)
        self._key_of[iid] = key
        starts = self._starts.get(key)
        if starts is None:
            starts = self._starts[key] = {}
        starts[iid] = start_ms

    def leave(self, iid: str) -> None:
        """`iid` is out of the queue (answered, abandoned, ended or forgotten)."""
        key = self._key_of.pop(iid, None)
        if key is not None:
            self._forget(iid, key)

    def _forget(self, iid: str, key: Key) -> None:
        starts = self._starts[key]
        del starts[iid]
        if not starts:
            del self._starts[key]

    def gauges(self, clock: int | None, at_risk_after: Callable[[Key], float]) -> dict[Key, Live]:
        """Per key: how many wait, since when the oldest, and how many have
        waited longer than `at_risk_after(key)` ms at `clock` (none while there
        is no clock)."""
        gauges = {}
        for key, starts in self._starts.items():
            times = starts.values()
            oldest = min(times)
            at_risk = 0
            if clock is not None:
                limit = at_risk_after(key)
                if clock - oldest > limit:
                    at_risk = sum(1 for start in times if clock - start > limit)
            gauges[key] = Live(len(starts), oldest, at_risk)
        return gauges
