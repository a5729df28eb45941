"""`cc-kpi worker` starts Faust on the allocator of `pipeline.allocator`
(streams.allocator): jemalloc, loaded into the worker's own process, unless
configured otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.pipeline_runner import INPUTS, OUTPUTS, Deployment


@pytest.mark.parametrize("allocator", ["jemalloc", "pymalloc"])
def test_the_worker_runs_on_the_configured_allocator(
    tmp_path, kafka_bootstrap, redis_url, fresh_topics, allocator: str
) -> None:
    deployment = Deployment(
        tmp_path, kafka_bootstrap, redis_url, fresh_topics([*INPUTS, *OUTPUTS], partitions=4)
    )
    worker = deployment.start_worker(
        through_cli=True, env={"CC_ALLOCATOR": allocator, "PYTHONMALLOC": None}
    )
    assert worker.process is not None
    try:
        # execve: the worker is the process started, Faust in place of cc-kpi.
        maps = Path(f"/proc/{worker.process.pid}/maps").read_text()
        environ = Path(f"/proc/{worker.process.pid}/environ").read_bytes().split(b"\0")
        assert ("libjemalloc" in maps) == (allocator == "jemalloc")
        assert (b"PYTHONMALLOC=malloc" in environ) == (allocator == "jemalloc")
        worker.stop()
        assert worker.process.returncode == 0, worker.log_tail(60)
    finally:
        deployment.stop_all()
