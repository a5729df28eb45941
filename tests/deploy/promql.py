"""PromQL in the dashboards and rules: parsing and the metric names they read."""

from __future__ import annotations

import re
from typing import Final

from tests.deploy.conftest import require_module

KPI_GAUGES: Final = frozenset(
    {
        "cc_kpi_volume",
        "cc_kpi_frt_mean_seconds",
        "cc_kpi_frt_p50_seconds",
        "cc_kpi_frt_p90_seconds",
        "cc_kpi_frt_p99_seconds",
        "cc_kpi_asa_seconds",
        "cc_kpi_next_response_mean_seconds",
        "cc_kpi_next_response_p90_seconds",
        "cc_kpi_answer_ratio",
        "cc_kpi_service_level_ratio",
        "cc_kpi_abandonment_ratio",
        "cc_kpi_escalation_ratio",
        "cc_kpi_transfer_ratio",
        "cc_kpi_fcr_ratio",
        "cc_kpi_repeat_contact_ratio",
        "cc_kpi_contacts_per_resolution",
        "cc_kpi_aht_seconds",
        "cc_kpi_resolution_time_mean_seconds",
        "cc_kpi_reopen_ratio",
        "cc_kpi_csat_ratio",
        "cc_kpi_nps_score",
        "cc_kpi_ces_score",
    }
)
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
WINDOW_COUNTS: Final = frozenset(f"cc_window_{name}" for name in COUNTS)
LIVE: Final = frozenset(
    {"cc_queue_contacts", "cc_queue_oldest_wait_seconds", "cc_queue_at_risk_contacts"}
)
TARGETS: Final = frozenset(
    {
        "cc_target_service_level_ratio",
        "cc_target_frt_seconds",
        "cc_target_answer_ratio",
        "cc_target_abandonment_ratio",
        "cc_target_fcr_ratio",
        "cc_target_escalation_ratio",
        "cc_target_csat_ratio",
        "cc_target_min_contacts",
    }
)
SLA_STATE: Final = frozenset({"cc_sla_breached"})
COUNTERS: Final = frozenset(f"cc_{name}_total" for name in COUNTS) | {
    "cc_frt_seconds_bucket",
    "cc_frt_seconds_sum",
    "cc_frt_seconds_count",
}
HEALTH: Final = frozenset(
    {
        "cc_events_total",
        "cc_deadletter_total",
        "cc_late_events_total",
        "cc_duplicate_events_total",
        "cc_unknown_interaction_events_total",
        "cc_snapshot_timestamp_seconds",
        "cc_watermark_timestamp_seconds",
        "cc_redis_up",
        "cc_redis_errors_total",
        "cc_consumer_lag_messages",
        "cc_worker_up",
        "cc_board_partitions",
        "cc_internal_backlog_messages",
        "cc_internal_backlog_items",
        "cc_input_held",
        "cc_input_skew_seconds",
        "cc_input_ahead_partitions",
        "cc_input_ahead_pauses_total",
    }
)
EXPORTED: Final = KPI_GAUGES | WINDOW_COUNTS | LIVE | TARGETS | SLA_STATE | COUNTERS | HEALTH
"""Every metric name the pipeline exports (the list dashboards and rules may use)."""

KEYED: Final = KPI_GAUGES | WINDOW_COUNTS | LIVE | TARGETS | SLA_STATE
"""Series with `queue`/`network` roll-ups beside the leaves."""

_RANGE_VARIABLES: Final = re.compile(r"\$__(rate_interval|interval|range)\b")
_VARIABLE: Final = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def grafana_variables(text: str) -> set[str]:
    """Names of the dashboard variables used in `text` (`$x`, `${x}`, `${x:fmt}`)."""
    return {a or b for a, b in _VARIABLE.findall(text)} - {
        "__rate_interval",
        "__interval",
        "__range",
    }


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    """A Grafana query with its variables replaced, ready to parse or run."""
    expr = _RANGE_VARIABLES.sub("5m", expr)
    values = values or {}
    return _VARIABLE.sub(lambda m: values.get(m.group(1) or m.group(2), "x"), expr)


def parse(expr: str) -> object:
    parser = require_module("promql_parser", "promql-parser")
    return parser.parse(expr)


def selectors(expr: str) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """(metric name, {label: (operator, value)}) of every vector selector."""
    parser = require_module("promql_parser", "promql-parser")
    found: list[tuple[str, dict[str, tuple[str, str]]]] = []
    ops = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}

    def visit(node: object) -> bool:
        if isinstance(node, parser.VectorSelector):
            matchers = {
                m.name: (ops[str(m.op).rsplit(".", 1)[-1]], m.value) for m in node.matchers.matchers
            }
            name = node.name or matchers.pop("__name__", ("=", ""))[1]
            found.append((name, matchers))
        return True

    parser.walk(parser.parse(expr), visit)
    return found


def metric_names(expr: str) -> set[str]:
    return {name for name, _ in selectors(expr)}
