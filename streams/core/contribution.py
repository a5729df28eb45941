"""The unit of exchange between the pipeline's stages: one signed contribution.

A contribution says "at event time ts, metric `code` of key (channel, queue,
network) gets `value`". Stages that decide KPIs recompute their contributions
from state and send only the difference, with a count: +n adds, -n retracts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

Key = tuple[str, str, str]
"""(channel, queue, network); network is '-' outside social."""

Contribution = tuple[str, str, str, int, int, int]
"""(channel, queue, network, ts_ms, metric code, value)."""


def difference(
    after: Mapping[Contribution, int], before: Mapping[Contribution, int]
) -> Counter[Contribution]:
    """after - before, keeping negative counts (retractions)."""
    delta: Counter[Contribution] = Counter()
    for item, n in after.items():
        d = n - before.get(item, 0)
        if d:
            delta[item] = d
    for item, n in before.items():
        if item not in after:
            delta[item] = -n
    return delta
