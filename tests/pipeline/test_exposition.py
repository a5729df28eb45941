"""The /metrics exposition of a busy board passes `promtool check metrics`."""

import os
import shutil
import subprocess
from dataclasses import replace

import orjson
import pytest
from prometheus_client import generate_latest

from streams.config import Settings
from streams.feed import Feed
from streams.publish.prometheus import Exposition, registry
from tests.pipeline.harness import LocalPipeline

T0 = 1_767_225_600_000


def exposition_text() -> bytes:
    settings = replace(Settings(), clock="event")
    pipe = LocalPipeline(settings)
    events = Feed(seed=4, start_ms=T0, customers=40, gap_ms=3_000).contacts(300)
    pipe.send([(e.topic, orjson.dumps(e.event)) for e in events], 2_000_000_000_000)
    pipe.send([("cc.calls", b"{broken")], 2_000_000_000_000)
    pipe.report_live(2_000_000_000_000)
    records = list(pipe.records(2_000_000_100_000).values())
    pipe.sla.evaluate(records, "2026-01-01T00:00:00Z")

    def source() -> Exposition:
        return Exposition(
            records=records,
            settled=list(pipe.board.board.settled()),
            sla=list(pipe.sla.breached()),
            stats=pipe.stats,
            min_contacts=settings.min_contacts,
            clock_ms=pipe.board.board.clock_ms,
            snapshot_ms=2_000_000_000_000,
            redis_up=True,
            redis_errors=0,
            lag={("cc.calls", 0): 3},
        )

    return generate_latest(registry(source))


@pytest.mark.skipif(
    shutil.which("promtool") is None and not os.environ.get("CI"),
    reason="promtool is installed by make setup (in CI a missing promtool fails)",
)
def test_promtool_finds_nothing_to_lint():
    text = exposition_text()
    assert b"cc_kpi_service_level_ratio{" in text and b"cc_frt_seconds_bucket{" in text
    assert b'cc_deadletter_total{reason="invalid_json",topic="cc.calls"} 1.0' in text
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout.decode() + result.stderr.decode()
    )
