"""SLA breach and recovery, as transitions of a per-(KPI, key) state.

A KPI breaches when its value over the alerting window is on the wrong side of
its target and the window holds at least the minimum number of contacts (the
KPI's own denominator). Below that minimum the state is held as it was, so a
quiet night neither pages nor clears a page.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, Final

SLA_SCHEMA: Final = "cc.sla.v1"
BREACH: Final = "breach"
OK: Final = "ok"
RECOVERED: Final = "recovered"

RULES: Final = {
    # kpi: (higher is better, denominator from the record's counts)
    "service_level": (True, ("answered", "abandoned")),
    "answer_rate": (True, ("answered", "abandoned")),
    "abandonment_rate": (False, ("answered", "abandoned")),
    "fcr_rate": (True, ("resolved",)),
    "escalation_rate": (False, ("ended",)),
    "csat": (True, ("csat_answers",)),
}


def evaluate(
    record: Mapping[str, Any],
    states: MutableMapping[str, str],
    min_contacts: int,
    at: str,
) -> list[dict[str, Any]]:
    """Update `states` (kpi -> 'breach' | 'ok') from one record; returns the
    cc.sla events of the transitions."""
    events = []
    for kpi, (higher_is_better, denominator) in RULES.items():
        target = record["targets"].get(kpi)
        value = record["kpis"].get(kpi)
        if target is None or value is None:
            continue
        contacts = sum(record["counts"][name] for name in denominator)
        if contacts < min_contacts:
            continue
        breached = value < target if higher_is_better else value > target
        new = BREACH if breached else OK
        old = states.get(kpi)
        states[kpi] = new
        if new == old or (old is None and new == OK):
            continue
        events.append(
            {
                "schema": SLA_SCHEMA,
                "state": BREACH if breached else RECOVERED,
                "kpi": kpi,
                "channel": record["channel"],
                "queue": record["queue"],
                "network": record["network"],
                "window": record["window"],
                "value": value,
                "target": target,
                "contacts": contacts,
                "at": at,
            }
        )
    return events
