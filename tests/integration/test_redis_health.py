"""Redis's health as /metrics shows it: what the wallboards' data depends on,
shown from the start, not only once a snapshot write has failed."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from streams.publish.redis_sink import KPI_PREFIX, RedisSink
from tests.integration.pipeline_runner import Deployment, free_port, wait_for

RECORD = {"channel": "chat", "queue": "support", "network": None, "window": "5m", "volume": 3}


class PrivateRedis:
    """A redis-server of this test's own, to stop and start under a sink
    without touching the Redis the other tests share."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for(self._answers, 10, f"redis-server on port {self.port}", interval=0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def _answers(self) -> bool:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), "PING"], capture_output=True, text=True
        )
        return result.stdout.strip() == "PONG"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_a_new_sink_has_not_heard_from_redis() -> None:
    sink = RedisSink(aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0"), 60_000)
    assert sink.up is None


def test_the_check_follows_redis_going_away_and_coming_back(private_redis: PrivateRedis) -> None:
    async def scenario() -> list[bool | None]:
        sink = RedisSink(aioredis.Redis.from_url(private_redis.url), 60_000)
        seen = [await sink.check()]
        private_redis.stop()
        seen.append(await sink.check())
        private_redis.start()
        seen.append(await sink.check())
        await sink.close()
        return [*seen, sink.errors]

    # A failed check is not a failed write: cc_redis_errors_total counts writes.
    assert asyncio.run(scenario()) == [True, False, True, 0]


def test_a_write_with_nothing_to_write_still_asks_redis() -> None:
    """redis-py sends an empty pipeline nowhere; a snapshot without records
    must not pass for a write Redis took."""

    async def scenario() -> tuple[bool, bool | None]:
        sink = RedisSink(aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0"), 60_000)
        took = await sink.write([], [])
        await sink.close()
        return took, sink.up

    assert asyncio.run(scenario()) == (False, False)


def test_a_write_marks_redis_down_then_up(private_redis: PrivateRedis) -> None:
    async def scenario() -> list[object]:
        sink = RedisSink(aioredis.Redis.from_url(private_redis.url), 60_000)
        private_redis.stop()
        seen: list[object] = [await sink.write([RECORD], []), sink.up, sink.errors]
        private_redis.start()
        seen += [await sink.write([RECORD], []), sink.up, sink.errors]
        seen.append(await sink.client.exists(KPI_PREFIX + "chat|support|-|5m"))
        await sink.close()
        return seen

    assert asyncio.run(scenario()) == [False, False, 1, True, True, 1, 1]


def test_a_worker_shows_redis_unreachable_before_its_first_snapshot(
    deployment: Deployment,
) -> None:
    """No input, so no event clock and no snapshot: the worker checks Redis
    every snapshot interval instead, and the CcRedisWritesFailing alert's
    series reads 0."""
    worker = deployment.start_worker(env={"CC_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    wait_for(
        lambda: worker.samples().get(("cc_redis_up", ())) == 0,
        30,
        "/metrics to show Redis down",
        log=worker.log,
    )
    samples = worker.samples()
    assert samples.get(("cc_redis_errors_total", ())) == 0
    assert ("cc_snapshot_timestamp_seconds", ()) not in samples
    assert "Redis check failed (ConnectionError)" in worker.log.read_text()
