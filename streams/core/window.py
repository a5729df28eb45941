"""Rolling event-time windows as rings of time buckets with a running total.

A window of span W and step s covers the buckets lo..hi, where hi is the
bucket holding the clock and lo = hi - W/s + 1; so it reports exactly the
events with window_start <= ts < window_end, both aligned to s. Adding a
contribution touches one bucket (and the total when the bucket is inside);
moving the clock adds buckets that came in and subtracts those that left.
Per-event work is O(1); memory is W/s buckets plus buckets ahead of the clock.
"""

from __future__ import annotations

from collections.abc import Iterator

from streams.core.aggregate import Aggregate


class RollingWindow:
    """One key's buckets for one window length."""

    __slots__ = ("buckets", "hi", "n", "step", "total")

    def __init__(self, span_ms: int, step_ms: int) -> None:
        if span_ms % step_ms:
            raise ValueError(f"window span {span_ms} ms is not a multiple of step {step_ms} ms")
        self.step = step_ms
        self.n = span_ms // step_ms
        self.buckets: dict[int, Aggregate] = {}
        self.total = Aggregate()
        self.hi: int | None = None

    @property
    def lo(self) -> int | None:
        return None if self.hi is None else self.hi - self.n + 1

    def bounds_ms(self) -> tuple[int, int] | None:
        """(window_start, window_end) in epoch ms, end exclusive."""
        if self.hi is None:
            return None
        return (self.hi - self.n + 1) * self.step, (self.hi + 1) * self.step

    def add(self, ts: int, code: int, value: int, weight: int) -> int | None:
        """Fold a contribution into its bucket; returns the bucket index, or None
        when the bucket already left the window (nothing to change there).
        Before the first advance nothing is in the total yet: the advance adds it."""
        index = ts // self.step
        hi = self.hi
        if hi is not None and index <= hi - self.n:
            return None
        bucket = self.buckets.get(index)
        if bucket is None:
            bucket = self.buckets[index] = Aggregate()
        bucket.apply(code, value, weight)
        if hi is not None and index <= hi:
            self.total.apply(code, value, weight)
        return index

    def advance(self, clock_ms: int) -> list[tuple[int, Aggregate]]:
        """Move the window to end at the bucket of `clock_ms`; returns the buckets
        that left it. The clock never moves backwards."""
        new_hi = clock_ms // self.step
        if self.hi is not None and new_hi <= self.hi:
            return []
        old_hi = self.hi
        self.hi = new_hi
        new_lo = new_hi - self.n + 1
        left: list[tuple[int, Aggregate]] = []
        entered_after = new_lo - 1 if old_hi is None else old_hi
        for index in sorted(self.buckets):
            bucket = self.buckets[index]
            if index < new_lo:
                if old_hi is not None and index <= old_hi:
                    self.total.merge(bucket, -1)
                del self.buckets[index]
                left.append((index, bucket))
            elif entered_after < index <= new_hi:
                self.total.merge(bucket)
        return left

    def restore(self, index: int, bucket: Aggregate) -> None:
        """Put back a bucket read from the changelog; the first advance counts it."""
        if self.hi is not None:
            raise RuntimeError("restore only before the window first advances")
        self.buckets[index] = bucket

    def items(self) -> Iterator[tuple[int, Aggregate]]:
        return iter(self.buckets.items())
