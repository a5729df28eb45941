"""deploy/prometheus: config, recording and alerting rules, promtool unit tests.

The Grafana-managed alert rules are held to the same promtool test cases: each
one is translated to a Prometheus alerting rule ((A) <op> on(...) (B), its `for`
and labels) and the alerting tests run against the translation.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import promql
from tests.deploy.conftest import (
    COMPOSE,
    PROMETHEUS,
    PROVISIONING,
    load_yaml,
    require_tool,
    yaml_module,
)

RULES = PROMETHEUS / "rules"
TESTS = PROMETHEUS / "tests"
KEY = "job, channel, queue, network"


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    tool = require_tool("promtool", "Debian package prometheus")
    return subprocess.run(
        [tool, *args], capture_output=True, text=True, timeout=300, cwd=cwd, check=False
    )


def ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config() -> None:
    ok(promtool("check", "config", str(PROMETHEUS / "prometheus.yml")))


def test_promtool_check_rules() -> None:
    ok(promtool("check", "rules", *map(str, sorted(RULES.glob("*.yml")))))


def test_promtool_test_rules() -> None:
    files = sorted(TESTS.glob("*.test.yml"))
    assert {f.name for f in files} == {
        "cc-kpi-alerts.test.yml",
        "cc-kpi-pipeline-alerts.test.yml",
        "cc-kpi-recording.test.yml",
    }
    ok(promtool("test", "rules", *map(str, files)))


def test_every_rule_file_is_loaded_by_the_compose_prometheus() -> None:
    loaded = load_yaml(PROMETHEUS / "prometheus.yml")["rule_files"]
    assert sorted(loaded) == sorted(f"rules/{f.name}" for f in RULES.glob("*.yml"))


def test_pipeline_alerts_read_exported_metrics_and_each_has_a_firing_test() -> None:
    document = load_yaml(RULES / "cc-kpi-pipeline-alerts.yml")
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    tests = load_yaml(TESTS / "cc-kpi-pipeline-alerts.test.yml")["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    quiet = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if not case["exp_alerts"]
    }
    for rule in rules:
        assert promql.metric_names(rule["expr"]) <= promql.EXPORTED, rule["alert"]
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["alert"] in fired and rule["alert"] in quiet, rule["alert"]


def test_unit_tests_cover_breach_recovery_and_a_quiet_night() -> None:
    text = (TESTS / "cc-kpi-alerts.test.yml").read_text()
    names = [case["name"] for case in load_yaml(TESTS / "cc-kpi-alerts.test.yml")["tests"]]
    for wanted in ("breach and recovery", "low-volume night does not page"):
        assert any(wanted in name for name in names), wanted
    tested = set(re.findall(r"alertname: (\w+)", text))
    alerts = {
        r["alert"] for g in load_yaml(RULES / "cc-kpi-alerts.yml")["groups"] for r in g["rules"]
    }
    assert alerts <= tested, f"alerts without a unit test: {alerts - tested}"


def test_prometheus_scrapes_the_compose_workers_on_the_metrics_port() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    services = load_yaml(COMPOSE)["services"]
    workers = sorted(name for name, s in services.items() if s.get("command") == ["worker"])
    assert len(workers) == 2
    (port,) = {services[w]["environment"]["CC_METRICS_PORT"] for w in workers}
    assert targets == [f"{w}:{port}" for w in workers]
    for pattern in config["rule_files"]:
        assert (PROMETHEUS / pattern).is_file(), pattern


def recording_rules() -> list[dict[str, Any]]:
    document = load_yaml(RULES / "cc-kpi-recording.yml")
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_recording_rules_read_exported_metrics_and_filter_the_rollups() -> None:
    recorded = {rule["record"] for rule in recording_rules()}
    for rule in recording_rules():
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule["record"]
        names = promql.metric_names(rule["expr"])
        assert names <= promql.EXPORTED | recorded, (rule["record"], names)
        for name, matchers in promql.selectors(rule["expr"]):
            if name in promql.KEYED:
                assert matchers.get("queue") == ("!=", "*"), rule["record"]
                assert matchers.get("network") == ("!=", "*"), rule["record"]
        if rule["expr"].lstrip().startswith("sum"):
            assert re.search(r"by \(job\b", rule["expr"]), f"{rule['record']}: keep the job"
    # Every windowed count is summed per channel, and the SLA ratios exist.
    for name in promql.WINDOW_COUNTS:
        assert f"channel_window:{name}:sum" in recorded
    for ratio in ("service_level", "answer", "abandonment", "escalation", "fcr", "csat"):
        assert f"channel_window:cc_{ratio}:ratio" in recorded
    # Ratios never divide by zero: the denominator is filtered with `> 0`.
    for rule in recording_rules():
        if " / " in rule["expr"]:
            assert "> 0)" in rule["expr"], rule["record"]


def translated_grafana_rules() -> dict[str, Any]:
    """The Grafana rules as one Prometheus rule group, named like the
    Prometheus rules they must match (found by KPI and channel)."""
    prom = [
        rule
        for group in load_yaml(RULES / "cc-kpi-alerts.yml")["groups"]
        for rule in group["rules"]
    ]

    def key(kpi: str, expr: str) -> tuple[str, str | None]:
        channels = {
            m["channel"][1]
            for _, m in promql.selectors(expr)
            if m.get("channel", ("", ""))[0] == "="
        }
        return kpi, (channels.pop() if channels else None)

    names = {key(rule["labels"]["kpi"], rule["expr"]): rule["alert"] for rule in prom}
    document = load_yaml(PROVISIONING / "alerting" / "cc-kpi-sla-rules.yaml")
    translated = []
    for group in document["groups"]:
        for rule in group["rules"]:
            data = {item["refId"]: item["model"] for item in rule["data"]}
            match = re.fullmatch(r"\$A ([<>]) \$B", data[rule["condition"]]["expression"])
            assert match, rule["title"]
            translated.append(
                {
                    "alert": names[key(rule["labels"]["kpi"], data["A"]["expr"])],
                    "expr": f"({data['A']['expr']})\n{match[1]} on ({KEY})\n({data['B']['expr']})",
                    "for": rule["for"],
                    "labels": rule["labels"],
                }
            )
    assert len(translated) == len(prom)
    return {"groups": [{"name": "grafana-translated", "interval": "1m", "rules": translated}]}


def test_grafana_rules_pass_the_same_unit_tests(tmp_path: Path) -> None:
    yaml = yaml_module()
    rules_dir = tmp_path / "rules"
    tests_dir = tmp_path / "tests"
    rules_dir.mkdir()
    tests_dir.mkdir()
    (rules_dir / "grafana.yml").write_text(yaml.safe_dump(translated_grafana_rules()))
    spec = load_yaml(TESTS / "cc-kpi-alerts.test.yml")
    spec["rule_files"] = ["../rules/grafana.yml"]
    for case in spec["tests"]:
        for check in case.get("alert_rule_test", []):
            for alert in check["exp_alerts"]:
                alert.pop("exp_annotations", None)  # Grafana templates its own text
    (tests_dir / "grafana.test.yml").write_text(yaml.safe_dump(spec))
    ok(promtool("check", "rules", str(rules_dir / "grafana.yml")))
    ok(promtool("test", "rules", str(tests_dir / "grafana.test.yml")))


@pytest.mark.parametrize("mutation", ["guard", "operator"])
def test_the_unit_tests_catch_a_broken_rule(tmp_path: Path, mutation: str) -> None:
    """The promtool cases fail when the guard or the comparison is wrong."""
    text = (RULES / "cc-kpi-alerts.yml").read_text()
    if mutation == "guard":
        broken = text.replace(">= on (", "> on (")
    else:
        broken = re.sub(r"(?m)^(\s*)([<>]) on \(", r"\1\2= on (", text)
    assert broken != text
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules" / "cc-kpi-alerts.yml").write_text(broken)
    spec = (TESTS / "cc-kpi-alerts.test.yml").read_text()
    (tmp_path / "tests" / "cc.test.yml").write_text(spec)
    if mutation == "operator":
        # <= instead of <: a KPI exactly on target would page; add such a case.
        yaml = yaml_module()
        document = yaml.safe_load(spec)
        key = 'job="j", channel="call", queue="q", network="-"'
        document["tests"].append(
            {
                "name": "exactly on target",
                "interval": "1m",
                "input_series": [
                    {
                        "series": f"{name}{{{key}{window}}}",
                        "values": f"{value}x20",
                    }
                    for name, window, value in (
                        ("cc_kpi_service_level_ratio", ', window="1h"', "0.8"),
                        ("cc_window_answered", ', window="1h"', "100"),
                        ("cc_window_abandoned", ', window="1h"', "0"),
                        ("cc_target_service_level_ratio", "", "0.8"),
                        ("cc_target_min_contacts", "", "20"),
                    )
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "15m",
                        "alertname": "CcCallServiceLevelBelowTarget",
                        "exp_alerts": [],
                    }
                ],
            }
        )
        (tmp_path / "tests" / "cc.test.yml").write_text(yaml.safe_dump(document))
    result = promtool("test", "rules", str(tmp_path / "tests" / "cc.test.yml"))
    assert result.returncode != 0, "the unit tests did not notice the broken rule"
