"""`cc-kpi worker` starts Faust on the allocator of `pipeline.allocator`
(streams.allocator): jemalloc, loaded into the worker's own process, unless
configured otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.pipeline_runner import (
    INPUTS,
    OUTPUTS,
    Deployment,
    free_port,
    metrics_at,
    wait_for,
)


@pytest.mark.parametrize("allocator", ["jemalloc", "pymalloc"])
def test_the_worker_runs_on_the_configured_allocator(
    tmp_path, kafka_bootstrap, redis_url, fresh_topics, allocator: str
) -> None:
    deployment = Deployment(
        tmp_path, kafka_bootstrap, redis_url, fresh_topics([*INPUTS, *OUTPUTS], partitions=4)
    )
    port = free_port()
    log = tmp_path / "worker.log"
    env = {**os.environ, "CC_METRICS_PORT": str(port), "CC_ALLOCATOR": allocator}
    env.pop("PYTHONMALLOC", None)
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "--config", str(deployment.config), "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: metrics_at(port), 90, "the worker's /metrics", log=log)
        # execve: the worker is the process started, Faust in place of cc-kpi.
        maps = Path(f"/proc/{worker.pid}/maps").read_text()
        environ = Path(f"/proc/{worker.pid}/environ").read_bytes().split(b"\0")
        assert ("libjemalloc" in maps) == (allocator == "jemalloc")
        assert (b"PYTHONMALLOC=malloc" in environ) == (allocator == "jemalloc")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
