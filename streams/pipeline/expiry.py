"""The keys of a partition that may have expired by a clock, found without
looking at the others.

An expiry tick that judged every key held made each tick a pass over the
whole state, on the event loop with the stage locked: 0.4-0.7 s at
70,000-140,000 interactions, and growing with a contact center's daily
volume (docs/benchmarks.md, "Expiry by due time"). Here each key is filed
under a lower bound of the clock at which it can expire, in buckets of
`bucket_ms`; a tick takes only the keys whose bucket has begun, and the stage
judges those and files again the ones it keeps.
"""

from __future__ import annotations

import heapq
from typing import Final

BUCKET_MS: Final = 60_000
"""The expiry tick's interval: a bucket holds what one tick can find due."""


class ExpiryIndex:
    """Keys by the bucket of the earliest due time they were filed with.

    A stage files a key whenever it stores it, with a due time no later than
    the key's real one: filing keeps the earliest, so a lower bound is enough
    and costs one lookup. A key taken early is judged, found not due, and
    filed again with its real due time."""

    def __init__(self, bucket_ms: int = BUCKET_MS) -> None:
        self.bucket_ms = bucket_ms
        self._bucket_of: dict[str, int] = {}
        self._buckets: dict[int, set[str]] = {}
        self._order: list[int] = []
        """A heap of bucket numbers: each bucket's at least once, perhaps again
        for one emptied and filled since."""

    def __len__(self) -> int:
        return len(self._bucket_of)

    def file(self, key: str, due_ms: int) -> None:
        """Make `key` due at `due_ms`, unless it is filed as due earlier."""
        bucket = due_ms // self.bucket_ms
        current = self._bucket_of.get(key)
        if current is not None:
            if current <= bucket:
                return
            self._remove(key, current)
        self._bucket_of[key] = bucket
        keys = self._buckets.get(bucket)
        if keys is None:
            keys = self._buckets[bucket] = set()
            heapq.heappush(self._order, bucket)
        keys.add(key)

    def forget(self, key: str) -> None:
        """A key no longer held."""
        current = self._bucket_of.pop(key, None)
        if current is not None:
            self._remove(key, current)

    def _remove(self, key: str, bucket: int) -> None:
        keys = self._buckets[bucket]
        keys.discard(key)
        if not keys:
            del self._buckets[bucket]

    def take(self, clock_ms: int) -> list[str]:
        """The keys of every bucket begun by `clock_ms`, out of the index: all
        that can be due, and some due within the bucket's remaining time."""
        last = clock_ms // self.bucket_ms
        taken: list[str] = []
        while self._order and self._order[0] <= last:
            keys = self._buckets.pop(heapq.heappop(self._order), None)
            if keys:
                for key in keys:
                    del self._bucket_of[key]
                taken.extend(keys)
        return taken
