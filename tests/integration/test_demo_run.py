"""`cc-kpi run`, the demo of the README's first command: a SIGTERM or a
SIGQUIT (Ctrl-\\) stops it and every process it started, as Ctrl-C does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGQUIT], ids=lambda s: s.name)
def test_a_stop_signal_stops_the_demo_and_its_children(
    tmp_path, kafka_bootstrap, redis_url, fresh_topics, stop_signal: signal.Signals
) -> None:
    deployment = Deployment(
        tmp_path, kafka_bootstrap, redis_url, fresh_topics([*INPUTS, *OUTPUTS], partitions=4)
    )
    port = free_port()
    log = tmp_path / "run.log"
    with log.open("ab") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "--config", str(deployment.config), "run"],
            env={**os.environ, "CC_METRICS_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    children: list[int] = []
    try:

        def counting() -> bool:
            children[:] = _children(demo.pid)
            return len(children) == 3 and "cc_events_total{" in (metrics_at(port) or "")

        wait_for(counting, 120, "the demo's worker counting events", log=log)
        demo.send_signal(stop_signal)
        assert demo.wait(timeout=90) == 0, log.read_text(errors="replace")[-3000:]
        deadline = time.monotonic() + 5
        while any(_running(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if _running(pid)], "children left running"
    finally:
        if demo.poll() is None:
            demo.kill()
        for pid in children:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (the children are the demo's, reaped by it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
