"""Run real pipeline workers (separate processes) and read their outputs back."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from streams.cli import ensure_topics
from streams.config import load_settings
from streams.feed import Feed

ROOT = Path(__file__).resolve().parents[2]
# kafka-python cannot decode the member metadata of Faust's own assignor and
# logs the whole group, kilobytes of bytes, at every describe_groups of these
# workers' group (the integration and deploy tests): a failed test's report
# drowned in them. The group's state and members still come back.
logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
INPUTS = ("calls", "chats", "emails", "social", "surveys")
OUTPUTS = ("kpis", "sla", "deadletter")
STOP_TIMEOUT_S = 30
"""Kubernetes gives a pod 30 s after SIGTERM by default."""
PARTITIONS = 4
"""Partitions of every topic of a test deployment."""
FEED_TOPIC = {
    "cc.calls": "calls",
    "cc.chats": "chats",
    "cc.emails": "emails",
    "cc.social": "social",
    "cc.surveys": "surveys",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deployment:
    """One pipeline app (consumer group) with its own topics, config and workers."""

    def __init__(
        self, tmp_path: Path, kafka: str, redis_url: str, topics: dict[str, str], **pipeline: Any
    ) -> None:
        self.kafka = kafka
        self.redis_url = redis_url
        self.topics = topics
        self.app_id = f"cc-kpi-test-{uuid.uuid4().hex[:8]}"
        self.tmp = tmp_path
        settings = {
            "clock": "event",
            "idle_timeout": "3s",
            "snapshot_interval": "1s",
            "partitions": PARTITIONS,
            **pipeline,
        }
        lines = [f'[kafka]\nbootstrap = "{kafka}"', f'[redis]\nurl = "{redis_url}"', "[topics]"]
        lines += [f'{name} = "{real}"' for name, real in topics.items()]
        lines.append(f'[pipeline]\napp_id = "{self.app_id}"\ndata_dir = "{tmp_path / "faust"}"')
        for key, value in settings.items():
            lines.append(f"{key} = {orjson.dumps(value).decode()}")
        self.config = tmp_path / "cc-kpi.toml"
        self.config.write_text("\n".join(lines) + "\n")
        self.workers: list[Worker] = []
        ensure_topics(load_settings(self.config, env={}), partitions=PARTITIONS)

    def start_worker(
        self,
        app: str = "streams.pipeline.app",
        through_cli: bool = False,
        env: Mapping[str, str | None] | None = None,
    ) -> Worker:
        """A worker process running `app` (the production app unless a test
        wraps it, e.g. to inject a fault); `through_cli`: started as
        `cc-kpi worker` (the production app); `env`: variables to set, or to
        unset (None)."""
        worker = Worker(self, len(self.workers), app, through_cli, env or {})
        self.workers.append(worker)
        worker.start()
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()

    # --- input --------------------------------------------------------------

    def produce(self, messages: Iterable[tuple[str, bytes | None, bytes]]) -> None:
        """(feed topic like 'cc.calls' or a logical name, key, value)."""
        producer = KafkaProducer(bootstrap_servers=self.kafka, linger_ms=5, acks="all")
        try:
            for topic, key, value in messages:
                name = FEED_TOPIC.get(topic, topic)
                producer.send(self.topics[name], key=key, value=value)
            producer.flush()
        finally:
            producer.close()

    # --- outputs ------------------------------------------------------------

    def redis_records(self) -> dict[str, dict[str, Any]]:
        client = redis.Redis.from_url(self.redis_url)
        try:
            keys = client.keys("cc:kpi:*")
            values = client.mget(keys) if keys else []
            return {
                k.decode().removeprefix("cc:kpi:"): orjson.loads(v)
                for k, v in zip(keys, values, strict=True)
                if v is not None
            }
        finally:
            client.close()

    def redis_sla(self, kpi: str, record_key: str) -> dict[str, Any] | None:
        client = redis.Redis.from_url(self.redis_url)
        try:
            value = client.get(f"cc:sla:{kpi}:{record_key}")
            return None if value is None else orjson.loads(value)
        finally:
            client.close()

    def read_topic(self, name: str, timeout_s: float = 30.0) -> list[Any]:
        """Every record of a topic (a logical name of [topics], or a real name)
        up to its end offsets at the time of the call."""
        topic = self.topics.get(name, name)
        consumer = KafkaConsumer(
            bootstrap_servers=self.kafka, enable_auto_commit=False, group_id=None
        )
        try:
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            ends = consumer.end_offsets(partitions)
            records: list[Any] = []
            deadline = time.monotonic() + timeout_s
            while any(consumer.position(tp) < end for tp, end in ends.items()):
                if time.monotonic() > deadline:
                    raise AssertionError(f"could not read {name} to its end in {timeout_s}s")
                for batch in consumer.poll(timeout_ms=500).values():
                    records.extend(
                        r for r in batch if r.offset < ends[TopicPartition(r.topic, r.partition)]
                    )
            return sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))
        finally:
            consumer.close()

    def latest_kpi_records(self) -> dict[str, dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for message in self.read_topic("kpis"):
            if message.value is None:
                latest.pop(message.key.decode(), None)
            else:
                latest[message.key.decode()] = orjson.loads(message.value)
        return latest


class Worker:
    def __init__(
        self,
        deployment: Deployment,
        number: int,
        app: str,
        through_cli: bool,
        env: Mapping[str, str | None],
    ) -> None:
        self.deployment = deployment
        self.app = app
        self.through_cli = through_cli
        self.env = env
        self.port = free_port()
        self.log = deployment.tmp / f"worker-{number}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "CC_CONFIG": str(self.deployment.config),
            "CC_METRICS_PORT": str(self.port),
        }
        for name, value in self.env.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        if self.through_cli:
            command = [sys.executable, "-m", "streams.cli", "worker"]
        else:
            command = [sys.executable, "-m", "faust", "-A", self.app, "--loop", "uvloop"]
            command += ["worker", "-l", "info"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            self.metrics_text, timeout=90, what=f"worker /metrics on port {self.port}", log=self.log
        )

    def stop(self) -> None:
        """SIGTERM, as Kubernetes and docker stop do: the worker commits what it
        took and leaves within seconds, well inside their grace periods."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.dump_stacks()
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"worker did not stop within {STOP_TIMEOUT_S}s of SIGTERM; log: {self.log}\n"
                + self.log_tail(120)
            ) from None

    def log_tail(self, lines: int) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def dump_stacks(self) -> None:
        """Every thread's stack into the worker's log (its SIGQUIT handler):
        what a stuck worker was doing."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            time.sleep(1)

    def metrics_text(self) -> str | None:
        return metrics_at(self.port)

    def samples(self) -> Samples:
        text = self.metrics_text() or ""
        out = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out


class GaugeWatch:
    """Polls a worker's unlabelled gauges in a thread until stopped, and keeps
    the largest value seen of each (absent: never scraped)."""

    def __init__(self, worker: Worker, *names: str) -> None:
        self.worker = worker
        self.names = names
        self.largest: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            samples = self.worker.samples()  # empty when a scrape fails
            for name in self.names:
                value = samples.get((name, ()))
                if value is not None:
                    self.largest[name] = max(value, self.largest.get(name, value))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def by_topic(samples: Samples, name: str) -> dict[str, float]:
    """A metric labelled by topic alone, e.g. a counter: topic -> value."""
    return {dict(labels)["topic"]: n for (sample, labels), n in samples.items() if sample == name}


def input_gaps(deployment: Deployment, samples: Samples) -> dict[str, float]:
    """Input topics some of whose messages the worker read from the log,
    having taken a partition for stalled (streams.pipeline.continuity)."""
    inputs = set(deployment.topics.values())
    gaps = by_topic(samples, "cc_consumer_gaps_total")
    return {topic: n for topic, n in gaps.items() if topic in inputs and n}


def metrics_at(port: int) -> str | None:
    """A worker's /metrics text; None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


class TimedOut(AssertionError):
    """A wait that ran out. The known gaps of two workers look like this (a
    clock that stopped), unlike a wrong figure, a crash or a broken fixture."""


def wait_for(
    probe: Callable[[], Any],
    timeout: float,
    what: str,
    log: Path | None = None,
    interval: float = 0.5,
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    tail = ""
    if log is not None and log.exists():
        tail = "\n--- log tail ---\n" + "\n".join(
            log.read_text(errors="replace").splitlines()[-60:]
        )
    raise TimedOut(f"timed out after {timeout:.0f}s waiting for {what}{tail}")


T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def feed_messages(
    seed: int, customers: int, gap_ms: int, contacts: int, at_least: int
) -> list[tuple[str, dict[str, Any]]]:
    """(topic, event) of `contacts` feed contacts from 2026-01-01, checked to be
    at least `at_least` events on every input topic."""
    events = Feed(seed=seed, start_ms=T0, customers=customers, gap_ms=gap_ms).contacts(contacts)
    messages = [(item.topic, item.event) for item in events]
    assert len(messages) >= at_least
    assert {t for t, _ in messages} == {
        "cc.calls",
        "cc.chats",
        "cc.emails",
        "cc.social",
        "cc.surveys",
    }
    return messages
