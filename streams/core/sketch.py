"""A mergeable, subtractable quantile sketch with relative-error guarantees.

This is DDSketch (Masson, Rim, Lee, VLDB 2019) with an unbounded sparse store:
a value v > 0 lands in bin ceil(log_gamma(v)) and is estimated by the bin's
midpoint 2 * gamma**i / (gamma + 1), which is within ALPHA of every value in
the bin. Bins are plain counts, so two sketches merge by adding counts and a
time bucket leaves a rolling window by subtracting them; that is what lets a
window be a running total instead of a re-merge of its buckets.

Values are non-negative integers (milliseconds in this pipeline).
"""

from __future__ import annotations

import math
from typing import Final

ALPHA: Final = 0.005
"""Relative accuracy: every quantile is within 0.5 % of the exact order statistic."""

_GAMMA: Final = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA: Final = math.log(_GAMMA)
_MIDPOINT: Final = 2 / (_GAMMA + 1)


def bin_of(value: int) -> int:
    """Bin index for a positive value."""
    return math.ceil(math.log(value) / _LOG_GAMMA)


class Sketch:
    """Counts per logarithmic bin, plus a separate count of zeros."""

    __slots__ = ("bins", "count", "zeros")

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.zeros = 0
        self.count = 0

    def add(self, value: int, weight: int = 1) -> None:
        """Add `weight` copies of `value`; a negative weight removes them."""
        self.count += weight
        if value <= 0:
            self.zeros += weight
            return
        index = bin_of(value)
        bins = self.bins
        left = bins.get(index, 0) + weight
        if left:
            bins[index] = left
        else:
            del bins[index]

    def merge(self, other: Sketch, sign: int = 1) -> None:
        """Add (or with sign=-1 subtract) every count of `other`."""
        self.count += sign * other.count
        self.zeros += sign * other.zeros
        bins = self.bins
        for index, n in other.bins.items():
            left = bins.get(index, 0) + sign * n
            if left:
                bins[index] = left
            else:
                del bins[index]

    def quantile(self, q: float) -> float | None:
        """Estimate of the value at rank floor(q * (count - 1)); None when empty.

        The rank rule matches `sorted(values)[int(q * (n - 1))]`, so the estimate
        is within ALPHA (relative) of that exact order statistic.
        """
        if self.count <= 0:
            return None
        rank = int(q * (self.count - 1))
        if rank < self.zeros:
            return 0.0
        seen = self.zeros
        for index in sorted(self.bins):
            seen += self.bins[index]
            if seen > rank:
                return _MIDPOINT * _GAMMA**index
        return _MIDPOINT * _GAMMA ** max(self.bins)

    def to_wire(self) -> list[int]:
        """Flat [zeros, bin, count, bin, count, ...] for compact JSON."""
        out = [self.zeros]
        for index, n in self.bins.items():
            out.append(index)
            out.append(n)
        return out

    @classmethod
    def from_wire(cls, wire: list[int]) -> Sketch:
        sketch = cls()
        sketch.zeros = wire[0]
        bins = sketch.bins
        for i in range(1, len(wire), 2):
            bins[wire[i]] = wire[i + 1]
        sketch.count = sketch.zeros + sum(bins.values())
        return sketch

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sketch):
            return NotImplemented
        return self.zeros == other.zeros and self.bins == other.bins

    def __repr__(self) -> str:
        return f"Sketch(count={self.count}, zeros={self.zeros}, bins={len(self.bins)})"
