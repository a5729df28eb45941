"""Fixtures for tests against a real Kafka broker and Redis server.

`make test` starts both (deploy/local/*.sh on ports 19092/16379) and exports
CC_TEST_KAFKA / CC_TEST_REDIS. Without those variables, e.g. when running
`pytest tests/integration` by hand, the session fixtures start the same
scripts themselves and stop them at the end (only if they started them).
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import redis
from kafka.admin import KafkaAdminClient

from tests.integration.pipeline_runner import INPUTS, OUTPUTS, Deployment

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "deploy" / "local"
# `make test` passes its own values (they can be overridden on its command line).
TEST_LOCAL_DIR = Path(os.environ.get("CC_TEST_LOCAL_DIR", ROOT / ".local" / "test"))
TEST_KAFKA_PORT = int(os.environ.get("CC_TEST_KAFKA_PORT", "19092"))
TEST_KAFKA_CONTROLLER_PORT = int(os.environ.get("CC_TEST_KAFKA_CONTROLLER_PORT", "19093"))
TEST_REDIS_PORT = int(os.environ.get("CC_TEST_REDIS_PORT", "16379"))

# Creates topics and returns {logical name: unique real name}.
TopicFactory = Callable[..., dict[str, str]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration is an integration test (`-m "not integration"`)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)


def run_local_script(
    name: str, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """A deploy/local script, with `env` over this process's environment."""
    return subprocess.run(
        [str(SCRIPTS / name), *args],
        env={**os.environ, **env},
        text=True,
        capture_output=True,
        check=False,
    )


def _script(name: str, *args: str, port_var: str, port: int) -> subprocess.CompletedProcess[str]:
    # Same ports and state dir as `make test`, whatever the caller's CC_* say.
    env = {
        "CC_LOCAL_DIR": str(TEST_LOCAL_DIR),
        "CC_KAFKA_CONTROLLER_PORT": str(TEST_KAFKA_CONTROLLER_PORT),
        port_var: str(port),
    }
    return run_local_script(name, *args, env=env)


@contextmanager
def _managed_service(name: str, port_var: str, port: int) -> Iterator[None]:
    """Start a service script unless it is already up; stop it only if we started it."""
    already_up = _script(name, "status", port_var=port_var, port=port).returncode == 0
    if not already_up:
        started = _script(name, "start", port_var=port_var, port=port)
        if started.returncode != 0:
            pytest.fail(
                f"{name} start failed (exit {started.returncode}):\n"
                f"{started.stdout}{started.stderr}",
                pytrace=False,
            )
    try:
        yield
    finally:
        if not already_up:
            _script(name, "stop", port_var=port_var, port=port)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers ("host:port") of a running single-node Kafka."""
    if bootstrap := os.environ.get("CC_TEST_KAFKA"):
        yield bootstrap
        return
    with _managed_service("kafka.sh", "CC_KAFKA_PORT", TEST_KAFKA_PORT):
        yield f"127.0.0.1:{TEST_KAFKA_PORT}"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a running Redis (db 0 by default)."""
    if url := os.environ.get("CC_TEST_REDIS"):
        yield url
        return
    with _managed_service("redis.sh", "CC_REDIS_PORT", TEST_REDIS_PORT):
        yield f"redis://127.0.0.1:{TEST_REDIS_PORT}/0"


@pytest.fixture(scope="session")
def services(
    kafka_bootstrap: str, redis_url: str, kafka_admin: Admin
) -> Callable[[str, str], None]:
    """`services("kafka" | "redis", "stop" | "start")`: take the test services
    down and up again (their data is kept), for fault tests."""
    ports = {
        "kafka": ("kafka.sh", "CC_KAFKA_PORT", TEST_KAFKA_PORT),
        "redis": ("redis.sh", "CC_REDIS_PORT", TEST_REDIS_PORT),
    }

    def control(service: str, action: str) -> None:
        script, port_var, port = ports[service]
        done = _script(script, action, port_var=port_var, port=port)
        assert done.returncode == 0, f"{script} {action}: {done.stdout}{done.stderr}"
        if (service, action) == ("kafka", "start"):
            kafka_admin.renew()

    return control


class Admin:
    """The tests' Kafka admin client, made again after the broker restarts:
    kafka-python 3.0's client does not reconnect to a broker that went away
    (every call then fails with NodeNotReadyError)."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._client = self._new()

    def _new(self) -> KafkaAdminClient:
        return KafkaAdminClient(bootstrap_servers=self._bootstrap, client_id="cc-kpi-tests-admin")

    def renew(self) -> None:
        with suppress(Exception):
            self._client.close()
        self._client = self._new()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> Iterator[Admin]:
    admin = Admin(kafka_bootstrap)
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture
def fresh_topics(request: pytest.FixtureRequest, kafka_admin: Admin) -> Iterator[TopicFactory]:
    """Factory creating uniquely named topics for this test; deleted afterwards.

    ``fresh_topics(["events", "kpis"], partitions=4)`` returns
    ``{"events": "events.<test>.<random>", ...}`` once every partition has a leader,
    so tests never read each other's records.
    """
    created: list[str] = []
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name)[:60]

    def create(
        names: list[str] | tuple[str, ...],
        partitions: int = 4,
        configs: dict[str, str] | None = None,
    ) -> dict[str, str]:
        mapping = {name: f"{name}.{slug}.{uuid.uuid4().hex[:8]}" for name in names}
        # kafka-python 3.x: dict form (NewTopic is deprecated); wait_for_topics
        # blocks until each partition has a leader, so producers don't race it
        # (longer than create_topics' own 10 s wait: the broker may be busy).
        kafka_admin.create_topics(
            {
                real: {
                    "num_partitions": partitions,
                    "replication_factor": 1,
                    "configs": configs or {},
                }
                for real in mapping.values()
            },
            timeout_ms=30_000,
        )
        kafka_admin.wait_for_topics(list(mapping.values()), timeout_ms=60_000)
        created.extend(mapping.values())
        return mapping

    yield create
    if created:
        # Best effort: a leftover topic only costs disk in .local/test.
        try:
            kafka_admin.delete_topics(created, timeout_ms=30_000, raise_errors=False)
        except Exception as exc:  # pragma: no cover - diagnostics only
            print(f"warning: could not delete test topics {created}: {exc}")


def flush_redis_db(url: str) -> None:
    """Empty the Redis DB named by ``url`` (only that DB, not the whole server)."""
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture
def clean_redis(redis_url: str) -> Iterator[str]:
    """The Redis URL, with its DB emptied before and after the test."""
    flush_redis_db(redis_url)
    yield redis_url
    flush_redis_db(redis_url)


@pytest.fixture
def deployment(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    kafka_bootstrap: str,
    redis_url: str,
    fresh_topics: TopicFactory,
) -> Iterator[Deployment]:
    """A pipeline app with its own input and output topics, on an empty Redis DB;
    its workers are stopped at the end. Settings of its [pipeline] section can
    be passed with `indirect` parametrization."""
    flush_redis_db(redis_url)
    deployment = Deployment(
        tmp_path,
        kafka_bootstrap,
        redis_url,
        fresh_topics([*INPUTS, *OUTPUTS], partitions=4),
        **getattr(request, "param", {}),
    )
    yield deployment
    deployment.stop_all()
    flush_redis_db(redis_url)
