"""The shipped Prometheus config and rules against running, fed pipeline workers.

A real Prometheus (fixture `live_prometheus`, tests/deploy/conftest.py) scrapes
two workers each second. Checked here: the workers' exposition passes
`promtool check metrics`; every target is up; what Prometheus stores is exactly
what the workers serve; every recording and alerting rule loads, evaluates
without error, and the recording rules produce series.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from streams.pipeline.wire import channel_partitions
from tests.deploy.conftest import load_yaml, require_tool
from tests.deploy.live import JOB, LiveStack
from tests.deploy.test_prometheus import RULES
from tests.integration.pipeline_runner import PARTITIONS, wait_for

pytestmark = pytest.mark.integration

# Recording rules over series a clean feed does not produce (no dead letters,
# no late events).
MAY_BE_EMPTY = {"job_reason:cc_deadletter:rate5m", "job_topic:cc_late_events:rate5m"}

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def test_worker_exposition_passes_promtool_check_metrics(live_stack: LiveStack) -> None:
    promtool = require_tool("promtool", "Debian package prometheus")
    for worker in live_stack.workers:
        text = worker.metrics_text()
        assert text and "cc_worker_up" in text, f"worker :{worker.port}: empty scrape"
        result = subprocess.run(
            [promtool, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
            f"promtool check metrics on worker :{worker.port}:\n{result.stdout}{result.stderr}"
        )


def test_prometheus_scrapes_every_worker(live_prometheus: LiveStack) -> None:
    prometheus = live_prometheus.prometheus
    assert prometheus is not None
    up = prometheus.query(f'up{{job="{JOB}"}}')
    assert sorted(s["metric"]["instance"] for s in up) == sorted(
        live_prometheus.instance(w) for w in live_prometheus.workers
    )
    assert all(s["value"][1] == "1" for s in up)
    (workers,) = prometheus.query(f'sum(cc_worker_up{{job="{JOB}"}})')
    assert workers["value"][1] == str(len(live_prometheus.workers))


def worker_series(live: LiveStack, pattern: re.Pattern[str]) -> Series:
    """Every sample whose name matches, from every worker, keyed with its instance."""
    out: Series = {}
    for worker in live.workers:
        for (name, labels), value in worker.samples().items():
            if pattern.fullmatch(name):
                key = (name, tuple(sorted({*labels, ("instance", live.instance(worker))})))
                out[key] = value
    return out


def prometheus_series(live: LiveStack, pattern: re.Pattern[str]) -> Series:
    assert live.prometheus is not None
    out: Series = {}
    for sample in live.prometheus.query(f'{{__name__=~"{pattern.pattern}", job="{JOB}"}}'):
        labels = dict(sample["metric"])
        name = labels.pop("__name__")
        for extra in ("job", "deployment"):
            labels.pop(extra, None)
        out[(name, tuple(sorted(labels.items())))] = float(sample["value"][1])
    return out


def test_kpis_read_through_prometheus_equal_the_workers_metrics(
    live_prometheus: LiveStack,
) -> None:
    """With the feed paused, Prometheus' latest sample of every windowed KPI and
    count equals, exactly, the value the worker that serves it shows (read
    both until they agree: the workers settle a few seconds after the feed
    pauses, when idle partitions stop holding the event clock back)."""
    pattern = re.compile(r"cc_(kpi|window)_[a-z0-9_]+")
    live = live_prometheus
    last: list[tuple[Series, Series]] = [({}, {})]

    def agree() -> Series | None:
        ours = worker_series(live, pattern)
        theirs = prometheus_series(live, pattern)
        last[0] = (ours, theirs)
        return ours if ours and ours == theirs else None

    live.feed.pause()
    try:
        ours = wait_for(agree, 60, "Prometheus to hold the workers' values", interval=1)
    except AssertionError:
        ours, theirs = last[0]
        missing = sorted(set(ours) - set(theirs))[:5]
        extra = sorted(set(theirs) - set(ours))[:5]
        wrong = [(k, ours[k], theirs[k]) for k in sorted(ours.keys() & theirs.keys())]
        wrong = [w for w in wrong if w[1] != w[2]][:5]
        raise AssertionError(f"missing {missing}, extra {extra}, different {wrong}") from None
    finally:
        live.feed.resume()
    assert len(ours) > 500
    # The one KPI a supervisor looks at first: the call channel's service level.
    (call,) = [
        value
        for (name, labels), value in ours.items()
        if name == "cc_kpi_service_level_ratio"
        and {("channel", "call"), ("queue", "*"), ("window", "1h")} <= set(labels)
    ]
    assert 0 < call <= 1


def test_every_rule_loads_evaluates_and_records(live_prometheus: LiveStack) -> None:
    prometheus = live_prometheus.prometheus
    assert prometheus is not None
    shipped = {
        rule.get("record") or rule["alert"]
        for path in sorted(RULES.glob("*.yml"))
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    }

    def evaluated() -> list[dict] | None:
        groups = prometheus.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if all(rule.get("lastEvaluation", "0001") > "2000" for rule in rules) else None

    rules = wait_for(evaluated, 30, "every rule to be evaluated once")
    assert {rule["name"] for rule in rules} == shipped
    errors = [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"]
    assert not errors, errors
    # The settled rates need a counter that grew in the last hour: surveys settle
    # a few per minute with the live feed, so give them some time.
    empty = [rule["name"] for rule in rules if rule["type"] == "recording"]
    empty = [name for name in empty if name not in MAY_BE_EMPTY]
    deadline = time.monotonic() + 90
    while empty and time.monotonic() < deadline:
        live_prometheus.feed.check()
        empty = [name for name in empty if not prometheus.query(name)]
        if empty:
            time.sleep(2)
    assert not empty, f"recording rules without data: {empty}"


def test_the_pipeline_alerts_join_on_the_workers_that_hold_the_board(
    live_prometheus: LiveStack,
) -> None:
    """The snapshot alerts' join, without their thresholds, on real series: one
    young snapshot per worker holding board partitions, every board partition
    held once, and no pipeline alert pending on healthy workers."""
    prometheus = live_prometheus.prometheus
    assert prometheus is not None
    rules = {
        rule["alert"]: rule["expr"]
        for group in load_yaml(RULES / "cc-kpi-pipeline-alerts.yml")["groups"]
        for rule in group["rules"]
    }
    stale_join = rules["CcKpiSnapshotStale"].replace(" > 120", "")
    assert stale_join != rules["CcKpiSnapshotStale"]
    ages = prometheus.query(stale_join)
    holders = prometheus.query("cc_board_partitions > 0")
    assert holders and {s["metric"]["instance"] for s in ages} == {
        s["metric"]["instance"] for s in holders
    }
    assert all(float(s["value"][1]) < 30 for s in ages), ages
    (total,) = prometheus.query("sum(cc_board_partitions)")
    assert float(total["value"][1]) == len(channel_partitions(PARTITIONS))
    assert prometheus.query(rules["CcKpiSnapshotMissing"]) == []
    assert prometheus.query('ALERTS{component="pipeline"}') == []
