"""Every dashboard query against a real Prometheus scraping a running pipeline.

Needs the fixture `prometheus_url` (tests/deploy/conftest.py): a Prometheus
started for the tests, scraping two pipeline workers each second while a feed
sends them an hour of backfill and then live traffic; or, with
$CC_TEST_PROMETHEUS_URL, an existing one (e.g. the `docker compose up` stack
after a few minutes).

For each dashboard the variables are filled the way Grafana fills them: query
variables from `label_values(...)` through the Prometheus API, in dashboard
order (later ones depend on earlier ones); multi-value variables set to "All"
(their allValue, `.+`); single-value ones (and the wallboard's repeated row)
once per value of `channel`. Every panel query then runs as an instant query
and must return data for at least one of those fillings, without NaN; the few
signals that are legitimately empty in a clean run are listed in MAY_BE_EMPTY.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import promql
from tests.deploy.conftest import DASHBOARDS

pytestmark = pytest.mark.integration

RATE_INTERVAL = "1m"
"""$__rate_interval for a 15 s scrape interval (4 scrapes); the test's own
Prometheus scrapes each second."""

MAY_BE_EMPTY = {
    # Counters with no sample until the first such event: a clean feed has no
    # bad, late, duplicate or orphan events and no Redis failure.
    ("cc-pipeline-health", "Dead letters", "A"),
    ("cc-pipeline-health", "Late events", "A"),
    ("cc-pipeline-health", "Duplicates and unknown interactions", "A"),
    ("cc-pipeline-health", "Duplicates and unknown interactions", "B"),
    ("cc-pipeline-health", "Redis errors", "A"),
}


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def label_values(base: str, query: str, values: dict[str, str]) -> list[str]:
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
    assert match, query
    selector, label = promql.substitute(match[1], values), match[2]
    series = api(base, "series", **{"match[]": selector})
    return sorted({s[label] for s in series if label in s})


def fillings(base: str, model: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Variable values to run the dashboard's queries with."""
    variables = [v for v in model["templating"]["list"] if v["type"] == "query"]
    single = [v["name"] for v in variables if not v["multi"]]
    repeated = {p.get("repeat") for p in model["panels"] if p["type"] == "row"} - {None}
    per_value = [name for name in ("channel",) if name in single or name in repeated]

    def resolve(fixed: dict[str, str]) -> Iterator[dict[str, str]]:
        values = dict(fixed)
        for variable in variables:
            name = variable["name"]
            if name in values:
                continue
            options = label_values(base, variable["query"], values)
            assert options, f"{model['uid']}: variable {name} has no value"
            if variable["multi"]:
                values[name] = variable.get("allValue") or "(" + "|".join(options) + ")"
            else:
                current = variable.get("current", {}).get("value")
                values[name] = current if current in options else options[0]
        yield values

    if not per_value:
        yield from resolve({})
        return
    job = next(v for v in variables if v["name"] == "job")
    jobs = {"job": job.get("allValue") or ".+"}
    channel = next(v for v in variables if v["name"] == "channel")
    for value in label_values(base, channel["query"], jobs):
        yield from resolve({**jobs, "channel": value})


def panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in model["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


@pytest.mark.parametrize("path", dashboard_files(), ids=[p.stem for p in dashboard_files()])
def test_every_panel_query_returns_data(prometheus_url: str, path: Path) -> None:
    model = json.loads(path.read_text())
    seen: dict[tuple[str, str, str], int] = {}
    runs = 0
    for values in fillings(prometheus_url, model):
        values = {**values, "__rate_interval": RATE_INTERVAL}
        for panel in panels(model):
            for target in panel["targets"]:
                key = (model["uid"], panel["title"], target["refId"])
                expr = promql.substitute(target["expr"], values).replace(
                    "$__rate_interval", RATE_INTERVAL
                )
                result = api(prometheus_url, "query", query=expr)["result"]
                runs += 1
                for sample in result:
                    value = float(sample["value"][1])
                    assert not math.isnan(value), f"{key}: NaN for {sample['metric']} ({expr})"
                seen[key] = seen.get(key, 0) + len(result)
    assert runs, f"{model['uid']}: nothing ran"
    empty = sorted(key for key, count in seen.items() if count == 0 and key not in MAY_BE_EMPTY)
    assert not empty, f"queries without data: {empty}"


def test_channel_rollup_equals_the_sum_over_queues(prometheus_url: str) -> None:
    """What the recording rules compute from the leaves (queue!="*") equals the
    pipeline's own channel roll-up (queue="*"), evaluated at one instant."""
    leaves = 'queue!="*", network!="*"'
    rollup = 'queue="*", network=~"-|\\\\*"'
    for numerator, denominator, kpi in (
        ("answered_within_target", ("answered", "abandoned"), "service_level_ratio"),
        ("abandoned", ("answered", "abandoned"), "abandonment_ratio"),
        ("resolved_first_contact", ("resolved",), "fcr_ratio"),
        ("escalated", ("ended",), "escalation_ratio"),
    ):
        below = " + ".join(
            f"sum by (job, channel, window) (cc_window_{name}{{{leaves}}})" for name in denominator
        )
        computed = (
            f"sum by (job, channel, window) (cc_window_{numerator}{{{leaves}}}) / (({below}) > 0)"
        )
        exported = f"max by (job, channel, window) (cc_kpi_{kpi}{{{rollup}}})"
        ours, theirs = (
            {_key(s): float(s["value"][1]) for s in result}
            for result in at_one_instant(prometheus_url, computed, exported)
        )
        assert ours, f"no data for {kpi}"
        assert ours.keys() == theirs.keys(), kpi
        for key, value in ours.items():
            assert math.isclose(value, theirs[key], rel_tol=1e-9, abs_tol=1e-12), (kpi, key)


def at_one_instant(base: str, *queries: str, wait_s: float = 30) -> list[list[Any]]:
    """The results of `queries` at one instant, a few 1 s scrapes back so that
    no scrape still being written can land before it (a scrape between two
    "now" queries moved the leaves but not the roll-up: a flake seen in CI).
    Right after the fixture finds Prometheus ready, that instant can precede
    its first samples (another flake): then a later instant, for up to
    `wait_s`, until every query has data."""
    deadline = time.monotonic() + wait_s
    while True:
        instant = f"{time.time() - 3:.3f}"
        results = [api(base, "query", query=query, time=instant)["result"] for query in queries]
        if all(results) or time.monotonic() > deadline:
            return results
        time.sleep(1)


def _key(sample: dict[str, Any]) -> tuple[str, ...]:
    metric = sample["metric"]
    return tuple(metric.get(label, "") for label in ("job", "channel", "window"))


def test_fillings_cover_every_channel(prometheus_url: str) -> None:
    model = json.loads((DASHBOARDS / "cc-wallboard.json").read_text())
    channels = {
        values["channel"] for values in itertools.islice(fillings(prometheus_url, model), 10)
    }
    assert channels == {"call", "chat", "email", "social"}
