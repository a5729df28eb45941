"""The SLA alert rules, defined once, rendered for Grafana and for Prometheus.

One rule per SLA target of kpis.md. A rule fires for a (job, channel, queue,
network) series when, over the alerting window (the pipeline's `alert_window`,
default 1h), the KPI is on the wrong side of the target the pipeline exports
(`cc_target_*`) and the window holds at least `cc_target_min_contacts`
contacts of the KPI's own denominator -- the same rule as the pipeline's
`cc.sla` events (streams/core/sla.py), so a quiet night does not page.

Grafana gets three queries per rule: A the guarded KPI value, B the exported
target, C a math expression comparing them (the rule's condition), so an alert
shows both numbers. Prometheus gets the same comparison as one expression.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from grafana_foundation_sdk.builders import alerting, expr, prometheus
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as alerting_models

ALERT_WINDOW: Final = "1h"
"""The window the rules look at: the pipeline's default `alert_window`."""

KEY: Final = "job, channel, queue, network"
"""Labels of one alert instance: where it comes from, and what to route on."""

DATASOURCE_UID: Final = "cc-prometheus"
"""UID of the provisioned Prometheus data source (provisioning/datasources)."""

FOLDER: Final = "Contact center"
GROUP: Final = "cc-kpi-sla"
EVALUATION_INTERVAL: Final = "1m"
TEAM: Final = "contact-center"

# A Prometheus query's look-back in Grafana alerting: instant queries only
# need the latest sample, 10 minutes covers the staleness window generously.
QUERY_RANGE_SECONDS: Final = 600


@dataclass(frozen=True, slots=True)
class SlaRule:
    """One SLA target of kpis.md, as an alert rule."""

    kpi: str
    """The pipeline's KPI id (`cc.sla` events, `cc_sla_breached{kpi}`)."""
    alert: str
    """Prometheus alert name."""
    title: str
    """Grafana rule title (unique in the folder)."""
    uid: str
    value_metric: str
    target_metric: str
    denominator: tuple[str, ...]
    """`cc_window_*` counts whose sum must reach `cc_target_min_contacts`."""
    higher_is_better: bool
    channel: str | None
    """Restrict to one channel; None = every channel whose target is exported."""
    for_: str
    severity: str
    summary: str

    @property
    def operator(self) -> str:
        return "<" if self.higher_is_better else ">"

    def selector(self, *, window: bool) -> str:
        matchers = []
        if self.channel is not None:
            matchers.append(f'channel="{self.channel}"')
        if window:
            matchers.append(f'window="{ALERT_WINDOW}"')
        return "{" + ", ".join(matchers) + "}" if matchers else ""

    def value_expr(self) -> str:
        """The KPI over the alerting window, only where the window holds the
        minimum number of contacts."""
        windowed = self.selector(window=True)
        volume = " + ".join(f"{name}{windowed}" for name in self.denominator)
        return (
            f"max by ({KEY}) ({self.value_metric}{windowed})\n"
            f"and on ({KEY})\n"
            f"(\n"
            f"  max by ({KEY}) ({volume})\n"
            f"  >= on ({KEY})\n"
            f"  max by ({KEY}) (cc_target_min_contacts{self.selector(window=False)})\n"
            f")"
        )

    def target_expr(self) -> str:
        return f"max by ({KEY}) ({self.target_metric}{self.selector(window=False)})"

    def prometheus_expr(self) -> str:
        value = self.value_expr().replace("\n", "\n  ")
        return f"(\n  {value}\n)\n{self.operator} on ({KEY})\n{self.target_expr()}"

    def labels(self) -> dict[str, str]:
        return {"kpi": self.kpi, "severity": self.severity, "team": TEAM}


def _rule(
    kpi: str,
    alert: str,
    name: str,
    value_metric: str,
    target_metric: str,
    denominator: tuple[str, ...],
    *,
    higher_is_better: bool,
    channel: str | None,
    for_: str,
    severity: str,
) -> SlaRule:
    where = f" ({channel})" if channel else ""
    direction = "below" if higher_is_better else "above"
    slug = kpi.replace("_", "-") + (f"-{channel}" if channel else "")
    return SlaRule(
        kpi=kpi,
        alert=alert.format(Channel=(channel or "").capitalize()),
        title=f"{name} {direction} target{where}",
        uid=f"cc-sla-{slug}",
        value_metric=value_metric,
        target_metric=target_metric,
        denominator=denominator,
        higher_is_better=higher_is_better,
        channel=channel,
        for_=for_,
        severity=severity,
        summary=f"{name} {direction} target",
    )


OFFERED: Final = ("cc_window_answered", "cc_window_abandoned")

RULES: Final[tuple[SlaRule, ...]] = (
    # Service level, one rule per channel: live channels page after 5 minutes,
    # email and social (targets of hours) after 15.
    *(
        _rule(
            "service_level",
            "Cc{Channel}ServiceLevelBelowTarget",
            "Service level",
            "cc_kpi_service_level_ratio",
            "cc_target_service_level_ratio",
            OFFERED,
            higher_is_better=True,
            channel=channel,
            for_=for_,
            severity=severity,
        )
        for channel, for_, severity in (
            ("call", "5m", "page"),
            ("chat", "5m", "page"),
            ("email", "15m", "ticket"),
            ("social", "15m", "ticket"),
        )
    ),
    # The others apply wherever the pipeline exports the target: by default
    # answer rate for calls, abandonment for calls and chats, FCR, escalation
    # and CSAT for every channel (kpis.md). A target configured for another
    # channel is alerted on without changing these rules.
    _rule(
        "answer_rate",
        "CcAnswerRateBelowTarget",
        "Answer rate",
        "cc_kpi_answer_ratio",
        "cc_target_answer_ratio",
        OFFERED,
        higher_is_better=True,
        channel=None,
        for_="5m",
        severity="page",
    ),
    _rule(
        "abandonment_rate",
        "CcAbandonmentAboveTarget",
        "Abandonment rate",
        "cc_kpi_abandonment_ratio",
        "cc_target_abandonment_ratio",
        OFFERED,
        higher_is_better=False,
        channel=None,
        for_="5m",
        severity="page",
    ),
    _rule(
        "fcr_rate",
        "CcFcrBelowTarget",
        "First contact resolution",
        "cc_kpi_fcr_ratio",
        "cc_target_fcr_ratio",
        ("cc_window_resolved",),
        higher_is_better=True,
        channel=None,
        for_="15m",
        severity="ticket",
    ),
    _rule(
        "escalation_rate",
        "CcEscalationAboveTarget",
        "Escalation rate",
        "cc_kpi_escalation_ratio",
        "cc_target_escalation_ratio",
        ("cc_window_ended",),
        higher_is_better=False,
        channel=None,
        for_="15m",
        severity="ticket",
    ),
    _rule(
        "csat",
        "CcCsatBelowTarget",
        "CSAT",
        "cc_kpi_csat_ratio",
        "cc_target_csat_ratio",
        ("cc_window_csat_answers",),
        higher_is_better=True,
        channel=None,
        for_="15m",
        severity="ticket",
    ),
)


def _description(rule: SlaRule, value: str, target: str) -> str:
    return (
        f"{rule.summary} on {{{{ $labels.channel }}}} queue {{{{ $labels.queue }}}} "
        f"(network {{{{ $labels.network }}}}): {{{{ {value} }}}} vs target "
        f"{{{{ {target} }}}} over the last {ALERT_WINDOW}, with at least the minimum "
        "number of contacts (cc_target_min_contacts)."
    )


def _target_template(rule: SlaRule) -> str:
    """A Prometheus alert template showing the exported target of the instance."""
    query = f"max({rule.target_metric}{{job=%q, channel=%q, queue=%q, network=%q}})"
    return (
        f'{{{{ with printf "{query}" $labels.job $labels.channel $labels.queue '
        "$labels.network | query }}{{ . | first | value | humanizePercentage }}{{ end }}"
    )


def prometheus_rules() -> dict[str, Any]:
    """The Prometheus alerting rule file (deploy/prometheus/rules/cc-kpi-alerts.yml)."""
    rules = []
    for rule in RULES:
        rules.append(
            {
                "alert": rule.alert,
                "expr": rule.prometheus_expr() + "\n",
                "for": rule.for_,
                "labels": rule.labels(),
                "annotations": {
                    "summary": f"{rule.summary}: {{{{ $labels.channel }}}} / "
                    "{{ $labels.queue }}",
                    "description": (
                        f"{rule.summary} on {{{{ $labels.channel }}}} queue "
                        "{{ $labels.queue }} (network {{ $labels.network }}): "
                        "{{ $value | humanizePercentage }} vs target "
                        f"{_target_template(rule)} over the last {ALERT_WINDOW}, with at "
                        "least the minimum number of contacts (cc_target_min_contacts)."
                    ),
                },
            }
        )
    return {"groups": [{"name": GROUP, "interval": EVALUATION_INTERVAL, "rules": rules}]}


def grafana_rule(rule: SlaRule) -> dict[str, Any]:
    """One Grafana-managed alert rule in the file-provisioning format."""
    relative = alerting_models.RelativeTimeRange(from_val=QUERY_RANGE_SECONDS, to=0)
    built = (
        alerting.Rule(rule.title)
        .uid(rule.uid)
        .condition("C")
        .queries(
            [
                alerting.Query("A")
                .datasource_uid(DATASOURCE_UID)
                .relative_time_range(relative)
                .model(prometheus.Dataquery().ref_id("A").expr(rule.value_expr()).instant()),
                alerting.Query("B")
                .datasource_uid(DATASOURCE_UID)
                .relative_time_range(relative)
                .model(prometheus.Dataquery().ref_id("B").expr(rule.target_expr()).instant()),
                alerting.Query("C")
                .datasource_uid("__expr__")
                .model(expr.TypeMath().ref_id("C").expression(f"$A {rule.operator} $B")),
            ]
        )
        .for_val(rule.for_)
        .no_data_state("OK")
        .exec_err_state("Error")
        .labels(rule.labels())
        .annotations(
            {
                "summary": f"{rule.summary}: {{{{ $labels.channel }}}} / {{{{ $labels.queue }}}}",
                "description": _description(
                    rule, "humanizePercentage $values.A.Value", "humanizePercentage $values.B.Value"
                ),
            }
        )
        .is_paused(False)
        .build()
    )
    data = json.loads(JSONEncoder().encode(built))
    # The SDK models the HTTP provisioning API; files name the folder and group
    # at the group level instead of per rule.
    return {
        key: data[key]
        for key in (
            "uid",
            "title",
            "condition",
            "data",
            "noDataState",
            "execErrState",
            "for",
            "annotations",
            "labels",
            "isPaused",
        )
    }


def grafana_rules() -> dict[str, Any]:
    """grafana/provisioning/alerting/cc-kpi-sla-rules.yaml."""
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": GROUP,
                "folder": FOLDER,
                "interval": EVALUATION_INTERVAL,
                "rules": [grafana_rule(rule) for rule in RULES],
            }
        ],
    }
