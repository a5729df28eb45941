"""The Grafana dashboards (grafana/dashboards/*.json) and their provisioning."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import promql
from tests.deploy.conftest import (
    COMPOSE,
    DASHBOARDS,
    PROVISIONING,
    generator,
    load_yaml,
    require_tool,
)

FILES = sorted(DASHBOARDS.glob("*.json"))
EXPECTED = {"cc-wallboard", "cc-queue", "cc-quality", "cc-pipeline-health"}
BUILTIN_VARIABLES = {"__all", "__rate_interval", "__interval", "__range"}

# Units the panels may use: Grafana unit ids that fit what the metrics measure.
UNITS = {"percentunit", "s", "short", "none", "ops"}

# Every KPI with an SLA target, and the target metric drawn beside it.
KPI_TARGET = {
    "cc_kpi_service_level_ratio": "cc_target_service_level_ratio",
    "cc_kpi_answer_ratio": "cc_target_answer_ratio",
    "cc_kpi_abandonment_ratio": "cc_target_abandonment_ratio",
    "cc_kpi_fcr_ratio": "cc_target_fcr_ratio",
    "cc_kpi_escalation_ratio": "cc_target_escalation_ratio",
    "cc_kpi_csat_ratio": "cc_target_csat_ratio",
    "cc_kpi_frt_p50_seconds": "cc_target_frt_seconds",
    "cc_kpi_frt_p90_seconds": "cc_target_frt_seconds",
    "cc_queue_oldest_wait_seconds": "cc_target_frt_seconds",
}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: load(path) for path in FILES}


def panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel but row headers (rows nest their panels only when collapsed)."""
    for panel in model["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def panel_by_title(model: dict[str, Any], title: str) -> dict[str, Any]:
    matches = [p for p in panels(model) if p["title"] == title]
    assert len(matches) == 1, f"{model['uid']}: {len(matches)} panels titled {title!r}"
    return matches[0]


def exprs(panel: dict[str, Any]) -> list[str]:
    return [target["expr"] for target in panel["targets"]]


def all_targets() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for uid, model in dashboards().items():
        for panel in panels(model):
            for target in panel["targets"]:
                yield uid, panel, target


def test_the_four_dashboards_exist_with_file_name_equal_to_uid() -> None:
    models = dashboards()
    assert set(models) == EXPECTED
    for stem, model in models.items():
        assert model["uid"] == stem


def test_generated_files_are_up_to_date() -> None:
    """The committed dashboards and alert rules are what grafana/cc_grafana/ generates."""
    gen = generator()
    stale = [str(path) for path, produce in gen.outputs().items() if path.read_text() != produce()]
    assert not stale, f"run `python grafana/generate.py`; out of date: {stale}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_dashboard_model_has_required_fields(path: Path) -> None:
    model = load(path)
    for key in ("uid", "title", "description", "schemaVersion", "panels", "templating", "time"):
        assert model.get(key), f"{path.name}: missing {key}"
    assert model["schemaVersion"] >= 39
    assert model["editable"] is False, "provisioned dashboards are read-only"
    assert "cc-kpi" in model["tags"]
    assert model["refresh"]
    names = [v["name"] for v in model["templating"]["list"]]
    assert len(names) == len(set(names)), f"duplicate variables {names}"
    datasource = [v for v in model["templating"]["list"] if v["type"] == "datasource"]
    assert [v["name"] for v in datasource] == ["datasource"]
    assert datasource[0]["query"] == "prometheus"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_panel_has_title_description_unit_datasource_and_targets(path: Path) -> None:
    model = load(path)
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(model):
        where = f"{path.name} / {panel.get('title')}"
        assert panel["title"] and panel["description"], where
        unit = panel["fieldConfig"]["defaults"].get("unit")
        assert unit in UNITS, f"{where}: unit {unit!r}"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert panel["targets"], f"{where}: no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), f"{where}: duplicate refIds {refs}"
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], where
            assert target["expr"].strip(), where


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_panels_do_not_overlap_and_fit_the_grid(path: Path) -> None:
    occupied: dict[tuple[int, int], str] = {}
    for panel in load(path)["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in occupied, f"{panel['title']} overlaps {occupied[(x, y)]}"
                occupied[(x, y)] = panel["title"]


def test_every_query_parses_and_reads_only_exported_metrics() -> None:
    checked = 0
    for uid, panel, target in all_targets():
        expr = promql.substitute(target["expr"])
        promql.parse(expr)
        names = promql.metric_names(expr)
        assert names, f"{uid} / {panel['title']}: no metric in {target['expr']}"
        unknown = names - promql.EXPORTED
        assert not unknown, f"{uid} / {panel['title']}: unknown metrics {unknown}"
        checked += 1
    assert checked > 60


def test_variable_queries_parse_and_read_only_exported_metrics() -> None:
    for uid, model in dashboards().items():
        for variable in model["templating"]["list"]:
            if variable["type"] != "query":
                continue
            query = variable["query"]
            assert query.startswith("label_values(") and query.endswith(")"), (uid, query)
            inner = query[len("label_values(") : -1]
            selector, label = inner.rsplit(",", 1)
            assert label.strip() == variable["name"], (uid, query)
            expr = promql.substitute(selector)
            assert promql.metric_names(expr) <= promql.EXPORTED, (uid, query)
            assert variable["refresh"] == 2, f"{uid}: {variable['name']} reloads on time change"


def test_every_variable_used_is_defined() -> None:
    for uid, model in dashboards().items():
        defined = {v["name"] for v in model["templating"]["list"]} | BUILTIN_VARIABLES
        texts = [v.get("query", "") for v in model["templating"]["list"]]
        texts += [p["title"] for p in model["panels"]]
        texts += [t["expr"] for p in panels(model) for t in p["targets"]]
        for text in texts:
            used = promql.grafana_variables(text)
            assert used <= defined, f"{uid}: undefined variables {used - defined} in {text!r}"


def test_keyed_series_always_select_leaves_or_one_key() -> None:
    """A KPI, count, live or target series is read either for one queue (or the
    roll-up "*") or with the roll-ups filtered out; never summed over both."""
    for uid, panel, target in all_targets():
        for name, matchers in promql.selectors(promql.substitute(target["expr"])):
            if name not in promql.KEYED:
                continue
            where = f"{uid} / {panel['title']}: {name}"
            queue = matchers.get("queue")
            assert queue is not None, f"{where} has no queue matcher"
            assert queue[0] == "=" or queue == ("!=", "*"), where
            network = matchers.get("network")
            assert network is not None, f"{where} has no network matcher"
            if name in promql.KPI_GAUGES | promql.WINDOW_COUNTS:
                assert "window" in matchers, f"{where} has no window matcher"


def test_every_kpi_with_a_target_is_drawn_with_its_target() -> None:
    for uid, model in dashboards().items():
        for panel in panels(model):
            names = set().union(*(promql.metric_names(promql.substitute(e)) for e in exprs(panel)))
            for kpi, target in KPI_TARGET.items():
                if kpi not in names:
                    continue
                assert target in names, f"{uid} / {panel['title']}: {kpi} without {target}"
                ref = next(
                    t["refId"]
                    for t in panel["targets"]
                    if target in promql.metric_names(promql.substitute(t["expr"]))
                )
                styled = {
                    o["matcher"]["options"]
                    for o in panel["fieldConfig"]["overrides"]
                    if o["matcher"]["id"] == "byFrameRefID"
                }
                assert ref in styled, f"{uid} / {panel['title']}: target {ref} is not styled"


def test_wallboard_has_a_row_per_channel_with_the_seven_panels() -> None:
    model = dashboards()["cc-wallboard"]
    rows = [p for p in model["panels"] if p["type"] == "row"]
    assert len(rows) == 1 and rows[0]["repeat"] == "channel"
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["channel"]["multi"] and variables["channel"]["includeAll"]
    wanted = {
        "Service level": "cc_kpi_service_level_ratio",
        "Answer rate": "cc_kpi_answer_ratio",
        "Abandonment": "cc_kpi_abandonment_ratio",
        "First response time": "cc_kpi_frt_p90_seconds",
        "Queue now": "cc_queue_contacts",
        "Oldest waiting": "cc_queue_oldest_wait_seconds",
        "At risk": "cc_queue_at_risk_contacts",
    }
    for title, metric in wanted.items():
        panel = panel_by_title(model, title)
        assert any(metric in e for e in exprs(panel)), title
        assert all('channel="$channel"' in e for e in exprs(panel)), title
        # The target (an exported one, or the at-risk threshold) is on every panel.
        drawn = panel["fieldConfig"]["overrides"] or panel["fieldConfig"]["defaults"].get(
            "custom", {}
        ).get("thresholdsStyle", {}).get("mode") not in (None, "off")
        assert drawn, f"{title}: no target drawn"
    assert "cc_kpi_frt_p50_seconds" in " ".join(exprs(panel_by_title(model, "First response time")))


def test_queue_drill_down_has_channel_queue_network_window_variables() -> None:
    model = dashboards()["cc-queue"]
    variables = {v["name"]: v for v in model["templating"]["list"]}
    for name in ("channel", "queue", "network", "window"):
        assert variables[name]["type"] == "query"
        assert not variables[name]["multi"], "one queue at a time"
    # queue depends on channel, network on both
    assert "$channel" in variables["queue"]["query"]
    assert "$queue" in variables["network"]["query"]
    for panel in panels(model):
        for expr in exprs(panel):
            for name, matchers in promql.selectors(promql.substitute(expr, {})):
                if name in promql.KEYED:
                    assert matchers["queue"] == ("=", "x"), f"{panel['title']}: {expr}"


def test_quality_dashboard_covers_its_kpis() -> None:
    model = dashboards()["cc-quality"]
    text = " ".join(e for p in panels(model) for e in exprs(p))
    for metric in (
        "cc_kpi_fcr_ratio",
        "cc_kpi_repeat_contact_ratio",
        "cc_kpi_escalation_ratio",
        "cc_kpi_transfer_ratio",
        "cc_kpi_csat_ratio",
        "cc_kpi_nps_score",
        "cc_kpi_ces_score",
        "cc_kpi_aht_seconds",
    ):
        assert metric in text, metric
    nps = panel_by_title(model, "NPS")["fieldConfig"]["defaults"]
    assert (nps["min"], nps["max"]) == (-100, 100)
    ces = panel_by_title(model, "CES")["fieldConfig"]["defaults"]
    assert (ces["min"], ces["max"]) == (1, 7)


def test_pipeline_health_dashboard_covers_its_signals() -> None:
    model = dashboards()["cc-pipeline-health"]
    wanted = {
        "Events consumed": ("cc_events_total", "topic"),
        "Consumer lag": ("cc_consumer_lag_messages", "topic"),
        "Dead letters": ("cc_deadletter_total", "reason"),
        "Late events": ("cc_late_events_total", "topic"),
        "Snapshot age": ("cc_snapshot_timestamp_seconds", "instance"),
        "Workers": ("cc_worker_up", None),
    }
    for title, (metric, by) in wanted.items():
        expr = exprs(panel_by_title(model, title))[0]
        assert metric in expr, title
        if by:
            assert f"by ({by})" in expr, title
        if metric.endswith("_total"):
            assert "rate(" in expr and "[$__rate_interval]" in expr, title
    variables = {v["name"] for v in model["templating"]["list"]}
    assert {"job", "instance"} <= variables


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_dashboard_linter(path: Path) -> None:
    linter = require_tool("dashboard-linter", "tests/deploy/tools/install.sh")
    result = subprocess.run(
        [linter, "lint", "--strict", "--config", str(DASHBOARDS / ".lint"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    problems = [line for line in result.stdout.splitlines() if not line.startswith("Checks")]
    assert result.returncode == 0, "\n".join([*problems, result.stderr])


def test_provisioning_points_at_the_dashboards_and_the_data_source() -> None:
    datasources = load_yaml(PROVISIONING / "datasources" / "prometheus.yaml")
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "cc-prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = load_yaml(PROVISIONING / "dashboards" / "cc-kpi.yaml")
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    compose = load_yaml(COMPOSE)
    mounts = {}
    for volume in compose["services"]["grafana"]["volumes"]:
        source_path, target, *_ = volume.split(":")
        mounts[target] = source_path
    assert mounts[provider["options"]["path"]] == "./grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    # Every dashboard's data source variable defaults to the provisioned one.
    for uid, model in dashboards().items():
        (variable,) = [v for v in model["templating"]["list"] if v["type"] == "datasource"]
        assert variable["current"]["value"] == source["uid"], uid
