"""Which KPIs of a record to flag: on the wrong side of the record's own targets, or
in breach by the pipeline's SLA state.

The record's targets are checked on every refresh (so a wallboard shows a
problem as soon as the value crosses); the SLA state adds what only the
pipeline knows (the alert window and minimum volume rule of kpis.md).
"""

from __future__ import annotations

from typing import Any, Final

from streams.live.snapshot import Snapshot

CHECKS: Final = {
    # KPI in record["kpis"]: (its target in record["targets"], higher is better)
    "service_level": ("service_level", True),
    "answer_rate": ("answer_rate", True),
    "fcr_rate": ("fcr_rate", True),
    "csat": ("csat", True),
    "abandonment_rate": ("abandonment_rate", False),
    "escalation_rate": ("escalation_rate", False),
    "frt_p90_seconds": ("frt_seconds", False),
}


def wrong_side(record: dict[str, Any]) -> set[str]:
    """KPIs whose value misses the target the record carries."""
    kpis = record.get("kpis", {})
    targets = record.get("targets", {})
    flagged = set()
    for kpi, (target_name, higher_is_better) in CHECKS.items():
        value = kpis.get(kpi)
        target = targets.get(target_name)
        if value is None or target is None:
            continue
        if (value < target) if higher_is_better else (value > target):
            flagged.add(kpi)
    return flagged


def flagged(record_key: str, record: dict[str, Any], snapshot: Snapshot) -> set[str]:
    """KPIs to highlight for one record."""
    in_breach = {kpi for kpi in CHECKS if snapshot.in_breach(kpi, record_key)}
    return wrong_side(record) | in_breach
