"""A live stack for the deployment tests: real pipeline workers fed with traffic,
scraped by a real Prometheus that loads the shipped config and rules.

- `LiveFeed` sends `streams.feed.Feed` traffic that starts `history` before now:
  the past is sent at once (a backfill), then the feed goes on in real time, so
  counters keep growing and every window (5m, 1h, 24h) ends near now.
- The workers run on the event clock (the backfill is an hour old; with the wall
  clock it would be late). Their windows end at the latest event time, which the
  live part keeps at about now.
- `Prometheus` runs the Debian `prometheus` binary with deploy/prometheus/
  prometheus.yml, its targets replaced by the workers and its intervals cut to
  1 s, and the rules of deploy/prometheus/rules/ with their group intervals
  removed (so they follow the 1 s global one). Expressions are unchanged.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import CoordinatorNotAvailableError

from streams.feed import Feed
from tests.deploy.conftest import PROMETHEUS, load_yaml, yaml_module
from tests.integration.pipeline_runner import (
    FEED_TOPIC,
    Deployment,
    Worker,
    free_port,
    wait_for,
)

JOB = "cc-kpi"


class LiveFeed(threading.Thread):
    """Feed traffic from `history_ms` ago, then in real time, until stopped."""

    def __init__(self, deployment: Deployment, history_ms: int, gap_ms: int, seed: int = 7) -> None:
        super().__init__(name="cc-live-feed", daemon=True)
        self.deployment = deployment
        self.started_ms = int(time.time() * 1000)
        self.feed = Feed(
            seed=seed, start_ms=self.started_ms - history_ms, customers=400, gap_ms=gap_ms
        )
        self.sent = 0
        self.backfilled = threading.Event()
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._idle = threading.Event()

    def run(self) -> None:
        producer = KafkaProducer(bootstrap_servers=self.deployment.kafka, linger_ms=20, acks="all")
        topics = self.deployment.topics
        try:
            for due, item in self.feed.live():
                delay = due / 1000 - time.time()
                if delay > 0:
                    if not self.backfilled.is_set():
                        producer.flush()
                        self.backfilled.set()
                    if self._stopping.wait(delay):
                        break
                if not self._running.is_set():
                    producer.flush()
                    self._idle.set()
                    while not self._running.wait(0.2):
                        if self._stopping.is_set():
                            break
                    self._idle.clear()
                if self._stopping.is_set():
                    break
                topic = topics[FEED_TOPIC[item.topic]]
                producer.send(topic, key=item.key.encode(), value=orjson.dumps(item.event))
                self.sent += 1
        except BaseException as error:  # reported by check(), not lost in the thread
            self.error = error
        finally:
            self._idle.set()
            producer.flush()
            producer.close()

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"the live feed failed: {self.error!r}") from self.error

    def pause(self) -> None:
        """Returns once everything sent so far is flushed and nothing more is sent."""
        self._running.clear()
        if not self._idle.wait(30):
            raise AssertionError("the live feed did not pause")
        self.check()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stopping.set()
        self._running.set()
        if self.ident is not None:  # started
            self.join(timeout=30)


class Prometheus:
    """A Prometheus process scraping `targets` with the shipped config and rules."""

    def __init__(self, binary: str, tmp: Path, targets: list[str]) -> None:
        self.binary = binary
        self.tmp = tmp
        self.targets = targets
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> Path:
        yaml = yaml_module()
        config = load_yaml(PROMETHEUS / "prometheus.yml")
        assert isinstance(config, dict)
        config["global"] |= {
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "evaluation_interval": "1s",
        }
        (job,) = config["scrape_configs"]
        assert job["job_name"] == JOB
        (static,) = job["static_configs"]
        static["targets"] = self.targets
        static.setdefault("labels", {})["deployment"] = "pytest"
        rules = []
        for pattern in config["rule_files"]:
            source = PROMETHEUS / pattern
            document = load_yaml(source)
            assert isinstance(document, dict)
            for group in document["groups"]:
                group.pop("interval", None)
            copy = self.tmp / "rules" / source.name
            copy.parent.mkdir(exist_ok=True)
            copy.write_text(yaml.safe_dump(document, sort_keys=False))
            rules.append(str(copy))
        config["rule_files"] = rules
        path = self.tmp / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def start(self) -> None:
        config = self.write_config()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.tmp / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                cwd=self.tmp,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.ready, 60, f"Prometheus on port {self.port}", log=self.log)

    def ready(self) -> bool:
        self.check_running()
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def check_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-4000:]
            raise AssertionError(f"Prometheus exited ({self.process.returncode}):\n{tail}")

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as r:
                body = json.load(r)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{path} {params}: {error.read().decode()}") from None
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("query", query=expr)["result"]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class LiveStack:
    """What the live fixtures hand to tests."""

    def __init__(
        self, deployment: Deployment, feed: LiveFeed, prometheus: Prometheus | None = None
    ) -> None:
        self.deployment = deployment
        self.feed = feed
        self.prometheus = prometheus

    @property
    def workers(self) -> list[Worker]:
        return self.deployment.workers

    def instance(self, worker: Worker) -> str:
        return f"127.0.0.1:{worker.port}"


def group_members(kafka: str, group: str) -> int | None:
    """Members of a consumer group once it is Stable (no rebalance under way), else None.

    Traffic is sent only then: a rebalance during the backfill makes the workers
    re-read from the last committed offsets, which the pipeline deduplicates,
    but the tests should not depend on it."""
    admin = KafkaAdminClient(bootstrap_servers=kafka, client_id="cc-kpi-deploy-tests")
    try:
        described = admin.describe_groups([group]).get(group) or {}
    except CoordinatorNotAvailableError:
        return None  # a fresh broker has no group coordinator for a moment
    finally:
        admin.close()
    if described.get("group_state") != "Stable":
        return None
    return len(described.get("members", []))


def clean_up_kafka(kafka: str, names: list[str], app_id: str) -> None:
    """Best effort: the test's topics, the app's internal ones (`<app_id>-...`)
    and its consumer group."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=kafka, client_id="cc-kpi-deploy-tests")
    except Exception as exc:  # pragma: no cover - diagnostics only
        print(f"warning: could not clean up after the live tests: {exc}")
        return
    try:
        doomed = [t for t in admin.list_topics() if t in names or t.startswith(f"{app_id}-")]
        if doomed:
            admin.delete_topics(doomed, timeout_ms=30_000, raise_errors=False)
        admin.delete_groups([app_id])
    except Exception as exc:  # pragma: no cover - diagnostics only
        print(f"warning: could not clean up after the live tests: {exc}")
    finally:
        admin.close()
