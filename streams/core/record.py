"""Turn an aggregate into the KPI record of the output contract (cc.kpi.v1).

A KPI whose denominator is zero is None (null in JSON, no Prometheus sample).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from streams.config import NO_NETWORK, Targets
from streams.core.aggregate import COUNTS, Aggregate

SCHEMA: Final = "cc.kpi.v1"

KPI_FIELDS: Final = (
    "volume",
    "frt_mean_seconds",
    "frt_p50_seconds",
    "frt_p90_seconds",
    "frt_p99_seconds",
    "asa_seconds",
    "next_response_mean_seconds",
    "next_response_p90_seconds",
    "answer_rate",
    "service_level",
    "abandonment_rate",
    "escalation_rate",
    "transfer_rate",
    "fcr_rate",
    "repeat_contact_rate",
    "contacts_per_resolution",
    "aht_seconds",
    "resolution_time_mean_seconds",
    "reopen_rate",
    "csat",
    "nps",
    "ces",
    "queue_now",
    "oldest_waiting_seconds",
    "at_risk",
)


@dataclass(frozen=True, slots=True)
class Live:
    """The live queue gauges of one key, measured at some clock."""

    queue_now: int = 0
    oldest_start_ms: int | None = None
    at_risk: int = 0

    def plus(self, other: Live) -> Live:
        oldest = [t for t in (self.oldest_start_ms, other.oldest_start_ms) if t is not None]
        return Live(
            self.queue_now + other.queue_now,
            min(oldest) if oldest else None,
            self.at_risk + other.at_risk,
        )


def iso(ms: int) -> str:
    """RFC 3339 UTC, with milliseconds only when they are not zero."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if ms % 1000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _seconds(value: float | None) -> float | None:
    return None if value is None else value / 1000


def kpis(agg: Aggregate, channel: str, live: Live, clock_ms: int) -> dict[str, Any]:
    c = dict(zip(COUNTS, agg.values, strict=False))
    answered, abandoned = c["answered"], c["abandoned"]
    offered = answered + abandoned
    frt_mean = _seconds(_ratio(agg.sum("frt_ms_sum"), answered))
    nr_count = agg.sum("next_response_count")
    oldest = live.oldest_start_ms
    return {
        "volume": c["started"],
        "frt_mean_seconds": frt_mean,
        "frt_p50_seconds": _seconds(agg.frt.quantile(0.5)),
        "frt_p90_seconds": _seconds(agg.frt.quantile(0.9)),
        "frt_p99_seconds": _seconds(agg.frt.quantile(0.99)),
        "asa_seconds": frt_mean if channel == "call" else None,
        "next_response_mean_seconds": _seconds(_ratio(agg.sum("next_response_ms_sum"), nr_count)),
        "next_response_p90_seconds": _seconds(agg.next_response.quantile(0.9)),
        "answer_rate": _ratio(answered, offered),
        "service_level": _ratio(c["answered_within_target"], offered),
        "abandonment_rate": _ratio(abandoned, offered),
        "escalation_rate": _ratio(c["escalated"], c["ended"]),
        "transfer_rate": _ratio(c["transferred"], c["ended"]),
        "fcr_rate": _ratio(c["resolved_first_contact"], c["resolved"]),
        "repeat_contact_rate": _ratio(c["repeat_contacts"], c["started"]),
        "contacts_per_resolution": _ratio(c["started"], c["resolved"]),
        "aht_seconds": _ratio(agg.sum("handle_us_sum"), agg.sum("handle_count") * 1_000_000),
        "resolution_time_mean_seconds": _seconds(
            _ratio(agg.sum("resolution_ms_sum"), agg.sum("resolution_count"))
        ),
        "reopen_rate": _ratio(c["reopened"], c["resolved"]),
        "csat": _ratio(c["csat_satisfied"], c["csat_answers"]),
        "nps": _ratio(100 * (c["nps_promoters"] - c["nps_detractors"]), c["nps_answers"]),
        "ces": _ratio(agg.sum("ces_sum"), c["ces_answers"]),
        "queue_now": live.queue_now,
        "oldest_waiting_seconds": None if oldest is None else max(0, clock_ms - oldest) / 1000,
        "at_risk": live.at_risk,
    }


def targets_dict(targets: Targets) -> dict[str, float]:
    return {
        name: value
        for name in (
            "service_level",
            "frt_seconds",
            "answer_rate",
            "abandonment_rate",
            "fcr_rate",
            "escalation_rate",
            "csat",
        )
        if (value := getattr(targets, name)) is not None
    }


def record_key(channel: str, queue: str, network: str, window: str) -> str:
    """`channel|queue|network|window`: the cc.kpis message key and Redis key suffix."""
    return f"{channel}|{queue}|{network}|{window}"


def build(
    *,
    channel: str,
    queue: str,
    network: str,
    window: str,
    bounds_ms: tuple[int, int],
    agg: Aggregate,
    live: Live,
    clock_ms: int,
    targets: Targets,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "channel": channel,
        "queue": queue,
        "network": None if network == NO_NETWORK else network,
        "window": window,
        "window_start": iso(bounds_ms[0]),
        "window_end": iso(bounds_ms[1]),
        "kpis": kpis(agg, channel, live, clock_ms),
        "counts": dict(zip(COUNTS, agg.values, strict=False)),
        "targets": targets_dict(targets),
    }
