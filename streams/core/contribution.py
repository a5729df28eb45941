"""The unit of exchange between the pipeline's stages: one signed contribution.

A contribution says "at event time ts, metric `code` of key (channel, queue,
network) gets `value`". Stages that decide KPIs recompute their contributions
from state and send only the difference, with a count: +n adds, -n retracts.
"""

from __future__ import annotations

from collections.abc import Mapping

Key = tuple[str, str, str]
"""(channel, queue, network); network is '-' outside social."""

Contribution = tuple[str, str, str, int, int, int]
"""(channel, queue, network, ts_ms, metric code, value)."""

Contributions = dict[Contribution, int]
"""Contribution -> count. A plain dict, not a Counter: built several times per
event, and Counter's missing-key path is Python code (about 3x slower)."""


def add(out: Contributions, item: Contribution) -> None:
    out[item] = out.get(item, 0) + 1


def difference(
    after: Mapping[Contribution, int], before: Mapping[Contribution, int]
) -> Contributions:
    """after - before, keeping negative counts (retractions)."""
    delta: Contributions = {}
    for item, n in after.items():
        d = n - before.get(item, 0)
        if d:
            delta[item] = d
    for item, n in before.items():
        if item not in after:
            delta[item] = -n
    return delta
