"""The pipeline, the simulator and the CLI over Kafka SASL_SSL (SCRAM-SHA-512) and
Redis with an ACL user over TLS, with credentials only in the environment; no
password ever shows in a log, an error or /metrics."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import redis
from kafka import KafkaConsumer, TopicPartition

from tests.security.conftest import ROOT, SecureServices

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOPICS = ("calls", "chats", "emails", "social", "surveys", "kpis", "sla", "deadletter")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cc_kpi(*args: str) -> list[str]:
    return [sys.executable, "-m", "streams.cli", *args]


@dataclass
class Run:
    """What a run through the secure services left behind."""

    services: SecureServices
    config: Path
    topics: dict[str, str]
    logs: dict[str, str]  # name -> everything a process printed
    metrics: str
    redis_records: dict[str, dict[str, object]]


def write_config(tmp: Path) -> tuple[Path, dict[str, str]]:
    """Topics, app id and pipeline knobs: no address, user or password in the file."""
    run = uuid.uuid4().hex[:8]
    topics = {name: f"sec.{name}.{run}" for name in TOPICS}
    lines = ["[topics]", *(f'{name} = "{real}"' for name, real in topics.items())]
    lines += [
        "[pipeline]",
        f'app_id = "cc-kpi-sec-{run}"',
        f'data_dir = "{tmp / "faust"}"',
        'clock = "event"',
        'idle_timeout = "2s"',
        'snapshot_interval = "1s"',
        "partitions = 2",
    ]
    config = tmp / "cc-kpi.toml"
    config.write_text("\n".join(lines) + "\n")
    return config, topics


def tls_redis(services: SecureServices) -> redis.Redis:
    return redis.Redis.from_url(
        services.redis_url,
        username=services.redis_user,
        password=services.redis_password,
        ssl_ca_certs=str(services.ca),
        socket_timeout=5,
    )


def read_topic(services: SecureServices, topic: str) -> list[tuple[bytes, bytes | None]]:
    """Every record of `topic`, through the SASL_SSL listener."""
    consumer = KafkaConsumer(
        bootstrap_servers=services.kafka_bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=services.kafka_user,
        sasl_plain_password=services.kafka_password,
        ssl_context=ssl.create_default_context(cafile=str(services.ca)),
        enable_auto_commit=False,
        group_id=None,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[tuple[bytes, bytes | None]] = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend((r.key, r.value) for r in batch)
        return records
    finally:
        consumer.close()


def metrics_text(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return None


def wait_for(probe, timeout: float, what: str, log: Path):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.5)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n--- log ---\n{tail}")


@pytest.fixture(scope="module")
def secure_run(
    secure_services: SecureServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """topics, a worker and the simulator, all through SASL_SSL / rediss://."""
    tmp = tmp_path_factory.mktemp("secure-run")
    config, topics = write_config(tmp)
    port = free_port()
    env = {**os.environ, **secure_services.env(), "CC_METRICS_PORT": str(port)}
    logs: dict[str, str] = {}

    created = subprocess.run(
        cc_kpi("--config", str(config), "topics", "--partitions", "2"),
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    logs["topics"] = created.stdout + created.stderr
    assert created.returncode == 0, logs["topics"]

    worker_log = tmp / "worker.log"
    with worker_log.open("wb") as out:
        worker = subprocess.Popen(
            cc_kpi("--config", str(config), "worker", "--partitions", "2", "--log-level", "info"),
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: metrics_text(port), 120, "the worker's /metrics", worker_log)
        simulated = subprocess.run(
            cc_kpi(
                "--config", str(config), "simulate", "normal-day", "--start",
                "2026-11-23T09:00:00Z", "--duration", "15m", "--no-progress",
            ),
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        logs["simulate"] = simulated.stdout + simulated.stderr
        assert simulated.returncode == 0, logs["simulate"]

        client = tls_redis(secure_services)
        try:

            def records() -> dict[str, dict[str, object]]:
                keys = client.keys("cc:kpi:*")
                values = client.mget(keys) if keys else []
                found = {
                    k.decode(): orjson.loads(v) for k, v in zip(keys, values, strict=True) if v
                }
                # The snapshot after the whole feed: every started contact counted.
                day = found.get("cc:kpi:call|*|-|24h", {})
                return found if day.get("counts", {}).get("started") else {}

            redis_records = wait_for(records, 120, "KPI records in Redis", worker_log)
        finally:
            client.close()
        metrics = metrics_text(port) or ""
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    logs["worker"] = worker_log.read_text(errors="replace")
    yield Run(secure_services, config, topics, logs, metrics, redis_records)


def test_kpis_reach_redis_over_tls_and_kafka_over_sasl_ssl(secure_run: Run) -> None:
    assert "cc:kpi:call|*|-|1h" in secure_run.redis_records
    kpis = read_topic(secure_run.services, secure_run.topics["kpis"])
    keys = {key.decode() for key, value in kpis if value is not None}
    assert {k.removeprefix("cc:kpi:") for k in secure_run.redis_records} <= keys
    assert "cc_kpi_volume" in secure_run.metrics
    assert "cc_redis_up 1.0" in secure_run.metrics


def test_no_password_in_any_log_error_or_metrics(secure_run: Run) -> None:
    services = secure_run.services
    texts = {**secure_run.logs, "/metrics": secure_run.metrics}
    assert texts["worker"].strip(), "the worker logged nothing: the check would be empty"
    for name, text in texts.items():
        for secret in (services.kafka_password, services.redis_password):
            assert secret not in text, f"a password appears in the output of {name}"


def test_the_plain_redis_port_needs_the_acl_user(secure_services: SecureServices) -> None:
    client = redis.Redis.from_url(secure_services.redis_plain_url, socket_timeout=5)
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            client.ping()
    finally:
        client.close()


def one_line_error(result: subprocess.CompletedProcess[str], *secrets: str) -> str:
    """The error a failed command printed: one line, no traceback, no password."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, output
    for secret in secrets:
        assert secret not in output
    return lines[0]


def test_a_wrong_password_is_one_clear_line(
    secure_services: SecureServices, tmp_path: Path
) -> None:
    config, _topics = write_config(tmp_path)
    wrong_kafka, wrong_redis = "wrong-" + uuid.uuid4().hex, "wrong-" + uuid.uuid4().hex
    env = {
        **os.environ,
        **secure_services.env(),
        "CC_KAFKA_SASL_PASSWORD": wrong_kafka,
        "CC_REDIS_PASSWORD": wrong_redis,
    }
    secrets = (wrong_kafka, wrong_redis, secure_services.kafka_password)
    base = cc_kpi("--config", str(config))
    # Both wait out kafka-python's bootstrap timeout: run them side by side.
    commands = {
        "worker": [*base, "worker"],
        "simulate": [*base, "simulate", "normal-day", "--duration", "1m", "--no-progress"],
    }
    running = {
        name: subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, command in commands.items()
    }
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=120)
        result = subprocess.CompletedProcess(commands[name], process.returncode, stdout, stderr)
        line = one_line_error(result, *secrets)
        assert secure_services.kafka_bootstrap in line, line
        assert "Authentication failed" in line or "refused the credentials" in line, line

    kpi = subprocess.run(
        [*base, "kpi", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    line = one_line_error(kpi, *secrets, secure_services.redis_password)
    assert "invalid username-password pair" in line, line
