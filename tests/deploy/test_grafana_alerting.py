"""Grafana-managed SLA alert rules and the notification-policy example."""

from __future__ import annotations

import re
from typing import Any

from tests.deploy import promql
from tests.deploy.conftest import PROVISIONING, load_yaml

RULES_FILE = PROVISIONING / "alerting" / "cc-kpi-sla-rules.yaml"
POLICIES_FILE = PROVISIONING / "alerting" / "cc-kpi-notification-policies.yaml"

# kpis.md, "SLA targets": (kpi, channel) pairs that need a rule. None: a rule
# that applies to every channel whose target the pipeline exports.
SLA_TARGETS = {
    ("service_level", "call"),
    ("service_level", "chat"),
    ("service_level", "email"),
    ("service_level", "social"),
    ("answer_rate", None),
    ("abandonment_rate", None),
    ("fcr_rate", None),
    ("escalation_rate", None),
    ("csat", None),
}
# What each KPI is compared with, which way, and the denominator guarded by
# the minimum volume: the pipeline's own SLA rule (streams/core/sla.py).
KPI = {
    "service_level": ("cc_kpi_service_level_ratio", "cc_target_service_level_ratio", "<"),
    "answer_rate": ("cc_kpi_answer_ratio", "cc_target_answer_ratio", "<"),
    "abandonment_rate": ("cc_kpi_abandonment_ratio", "cc_target_abandonment_ratio", ">"),
    "fcr_rate": ("cc_kpi_fcr_ratio", "cc_target_fcr_ratio", "<"),
    "escalation_rate": ("cc_kpi_escalation_ratio", "cc_target_escalation_ratio", ">"),
    "csat": ("cc_kpi_csat_ratio", "cc_target_csat_ratio", "<"),
}
DURATION = re.compile(r"^(\d+[smhd])+$")
ROUTING_LABELS = {"job", "channel", "queue", "network"}


def rules() -> list[dict[str, Any]]:
    document = load_yaml(RULES_FILE)
    assert document["apiVersion"] == 1
    (group,) = document["groups"]
    assert group["folder"] and group["name"] and DURATION.match(group["interval"])
    assert group["orgId"] == 1
    return group["rules"]


def queries(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["refId"]: item for item in rule["data"]}


def channel_of(expr: str) -> str | None:
    channels = {
        matchers["channel"][1]
        for _, matchers in promql.selectors(expr)
        if "channel" in matchers and matchers["channel"][0] == "="
    }
    assert len(channels) <= 1, expr
    return channels.pop() if channels else None


def test_one_rule_per_sla_target() -> None:
    found = set()
    for rule in rules():
        found.add((rule["labels"]["kpi"], channel_of(queries(rule)["A"]["model"]["expr"])))
    assert found == SLA_TARGETS
    assert len(rules()) == len(SLA_TARGETS)


def test_rules_are_well_formed() -> None:
    uids = [rule["uid"] for rule in rules()]
    titles = [rule["title"] for rule in rules()]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)
    for rule in rules():
        assert re.fullmatch(r"[a-zA-Z0-9-_]{1,40}", rule["uid"]), rule["uid"]
        assert DURATION.match(rule["for"]), rule["for"]
        assert rule["noDataState"] == "OK", "no series = nothing over the minimum volume"
        assert rule["execErrState"] in ("Error", "Alerting")
        assert rule["isPaused"] is False
        assert set(rule["labels"]) == {"kpi", "severity", "team"}
        assert rule["labels"]["severity"] in ("page", "ticket")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        data = queries(rule)
        assert set(data) == {"A", "B", "C"} and rule["condition"] == "C"
        for ref in ("A", "B"):
            assert data[ref]["datasourceUid"] == "cc-prometheus"
            assert data[ref]["model"]["instant"] is True
            assert data[ref]["model"]["refId"] == ref
            assert data[ref]["relativeTimeRange"]["from"] > 0
        assert data["C"]["datasourceUid"] == "__expr__"
        assert data["C"]["model"]["type"] == "math"


def test_value_is_compared_with_the_exported_target_under_a_volume_guard() -> None:
    from streams.core.sla import RULES as PIPELINE_RULES

    for rule in rules():
        kpi = rule["labels"]["kpi"]
        value_metric, target_metric, operator = KPI[kpi]
        data = queries(rule)
        assert data["C"]["model"]["expression"] == f"$A {operator} $B"
        value = data["A"]["model"]["expr"]
        target = data["B"]["model"]["expr"]
        names = promql.metric_names(value)
        assert names <= promql.EXPORTED and promql.metric_names(target) == {target_metric}
        higher_is_better, denominator = PIPELINE_RULES[kpi]
        assert (operator == "<") == higher_is_better
        assert names == {value_metric, "cc_target_min_contacts"} | {
            f"cc_window_{name}" for name in denominator
        }, f"{rule['title']}: guard must use the pipeline's denominator {denominator}"
        assert ">= on (" in value, "at least the minimum number of contacts"
        for name, matchers in promql.selectors(value):
            if name.startswith(("cc_kpi_", "cc_window_")):
                assert matchers["window"] == ("=", "1h"), f"{rule['title']}: alerting window"
        # Both sides keep exactly the routing labels, so the math joins them.
        for expr in (value, target):
            assert expr.startswith("max by (job, channel, queue, network) ("), expr


def test_live_channels_page_faster_than_async_ones() -> None:
    by_channel = {
        channel_of(queries(rule)["A"]["model"]["expr"]): rule
        for rule in rules()
        if rule["labels"]["kpi"] == "service_level"
    }
    assert by_channel["call"]["for"] == by_channel["chat"]["for"] == "5m"
    assert by_channel["email"]["for"] == by_channel["social"]["for"] == "15m"
    assert by_channel["call"]["labels"]["severity"] == "page"


def test_notification_policy_routes_on_labels_the_rules_carry() -> None:
    document = load_yaml(POLICIES_FILE)
    (tree,) = document["policies"]
    carried = ROUTING_LABELS | set(rules()[0]["labels"])
    values = {
        "team": {rule["labels"]["team"] for rule in rules()},
        "severity": {rule["labels"]["severity"] for rule in rules()},
    }
    routes = list(tree.get("routes", []))
    seen = 0
    while routes:
        route = routes.pop()
        routes.extend(route.get("routes", []))
        assert route["receiver"] == "grafana-default-email"
        for label, op, value in route.get("object_matchers", []):
            seen += 1
            assert label in carried, label
            assert op in ("=", "!=", "=~", "!~")
            if op == "=" and label in values:
                assert value in values[label], (label, value)
        for label in route.get("group_by", []):
            assert label in carried | {"alertname", "grafana_folder"}, label
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in route:
                assert DURATION.match(route[key]), (key, route[key])
    assert seen >= 4
    assert tree["receiver"] == "grafana-default-email"
