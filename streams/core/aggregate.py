"""The KPI aggregate: integer counters and two sketches that merge and subtract.

Every KPI of the spec is a function of one `Aggregate`. Each field is an
integer (times in ms, handle times in µs), so adding a bucket to a window and
taking it out again is exact: a rolling window is a running total, a roll-up
is a sum over queues, a cluster total is a sum over workers.

Contributions carry a metric code and a value; `apply` folds one in with a
weight (+1 to add, -1 to retract a contribution that a late event changed).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

from streams.core.sketch import Sketch

COUNTS: Final = (
    "started",
    "answered",
    "answered_within_target",
    "abandoned",
    "short_abandoned",
    "ended",
    "escalated",
    "transferred",
    "resolved",
    "resolved_first_contact",
    "repeat_contacts",
    "reopened",
    "csat_answers",
    "csat_satisfied",
    "nps_answers",
    "nps_promoters",
    "nps_detractors",
    "ces_answers",
)
"""Plain counters, in the order (and with the names) of the output record's `counts`."""

SUMS: Final = (
    "frt_ms_sum",
    "next_response_count",
    "next_response_ms_sum",
    "handle_count",
    "handle_us_sum",
    "resolution_count",
    "resolution_ms_sum",
    "ces_sum",
)

FRT_BUCKETS_SECONDS: Final[tuple[float, ...]] = (
    5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0,
    900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0,
)  # fmt: skip
"""Upper bounds of the exported FRT histogram (the spec's targets are among them)."""

_FRT_BOUNDS_MS: Final = tuple(int(b * 1000) for b in FRT_BUCKETS_SECONDS)

COUNT_INDEX: Final = {name: i for i, name in enumerate(COUNTS)}
_SUM_BASE: Final = len(COUNTS)
_HIST_BASE: Final = _SUM_BASE + len(SUMS)
WIDTH: Final = _HIST_BASE + len(FRT_BUCKETS_SECONDS) + 1

# Metric codes of contributions: a code below len(COUNTS) is that counter;
# the codes below carry a measured value.
FRT: Final = 100
NEXT_RESPONSE: Final = 101
HANDLE: Final = 102
RESOLUTION: Final = 103
CES: Final = 104

CODE_NAMES: Final = {
    **dict(enumerate(COUNTS)),
    FRT: "first_response",
    NEXT_RESPONSE: "next_response",
    HANDLE: "handle",
    RESOLUTION: "resolution",
    CES: "ces",
}
"""What each contribution code measures, for labels and messages."""

_FRT_SUM: Final = _SUM_BASE + SUMS.index("frt_ms_sum")
_NR_COUNT: Final = _SUM_BASE + SUMS.index("next_response_count")
_NR_SUM: Final = _SUM_BASE + SUMS.index("next_response_ms_sum")
_HANDLE_COUNT: Final = _SUM_BASE + SUMS.index("handle_count")
_HANDLE_SUM: Final = _SUM_BASE + SUMS.index("handle_us_sum")
_RES_COUNT: Final = _SUM_BASE + SUMS.index("resolution_count")
_RES_SUM: Final = _SUM_BASE + SUMS.index("resolution_ms_sum")
_CES_SUM: Final = _SUM_BASE + SUMS.index("ces_sum")


class Aggregate:
    """All KPI state of one (key, time span)."""

    __slots__ = ("frt", "next_response", "values")

    def __init__(self) -> None:
        self.values: list[int] = [0] * WIDTH
        self.frt = Sketch()
        self.next_response = Sketch()

    def apply(self, code: int, value: int, weight: int = 1) -> None:
        """Fold in one contribution `weight` times."""
        values = self.values
        if code < _SUM_BASE:
            values[code] += value * weight
        elif code == FRT:
            values[_FRT_SUM] += value * weight
            values[_HIST_BASE + bisect_left(_FRT_BOUNDS_MS, value)] += weight
            self.frt.add(value, weight)
        elif code == NEXT_RESPONSE:
            values[_NR_COUNT] += weight
            values[_NR_SUM] += value * weight
            self.next_response.add(value, weight)
        elif code == HANDLE:
            values[_HANDLE_COUNT] += weight
            values[_HANDLE_SUM] += value * weight
        elif code == RESOLUTION:
            values[_RES_COUNT] += weight
            values[_RES_SUM] += value * weight
        elif code == CES:
            values[_CES_SUM] += value * weight
        else:
            raise ValueError(f"unknown contribution code {code}")

    def merge(self, other: Aggregate, sign: int = 1) -> None:
        """Add (sign=1) or subtract (sign=-1) another aggregate."""
        values = self.values
        for i, v in enumerate(other.values):
            if v:
                values[i] += sign * v
        self.frt.merge(other.frt, sign)
        self.next_response.merge(other.next_response, sign)

    def copy(self) -> Aggregate:
        twin = Aggregate()
        twin.merge(self)
        return twin

    def is_empty(self) -> bool:
        return not any(self.values) and not self.frt.count and not self.next_response.count

    def count(self, name: str) -> int:
        return self.values[COUNT_INDEX[name]]

    def sum(self, name: str) -> int:
        return self.values[_SUM_BASE + SUMS.index(name)]

    def frt_histogram(self) -> list[int]:
        """Per-bucket FRT counts; the last one is above the largest bound."""
        return self.values[_HIST_BASE:]

    def to_wire(self) -> list:
        return [self.values, self.frt.to_wire(), self.next_response.to_wire()]

    @classmethod
    def from_wire(cls, wire: list) -> Aggregate:
        agg = cls()
        agg.values = list(wire[0])
        agg.frt = Sketch.from_wire(wire[1])
        agg.next_response = Sketch.from_wire(wire[2])
        return agg

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Aggregate):
            return NotImplemented
        return (
            self.values == other.values
            and self.frt == other.frt
            and self.next_response == other.next_response
        )

    def __repr__(self) -> str:
        nonzero = {COUNTS[i]: v for i, v in enumerate(self.values[:_SUM_BASE]) if v}
        return f"Aggregate({nonzero})"
