"""A stage that fails outside the KPI code ends its worker at once, with an
error and a non-zero status, for the process supervisor to restart: Faust's
default would restart the agent in place without the batch it held, which then
was never processed nor acknowledged, and the pipeline's clock stopped for
good; and Faust's crash stop hung for good when offsets waited to be committed
(its consumer thread stopped first). The restarted worker reads again from the
committed offsets: nothing is lost.

The failed stage sends nothing after the failure: its memory is ahead of what
it sent. A progress report sent then once carried event times of events never
sent; the restarted worker's clocks ran ahead of its data, settled buckets
early, and a late FCR retraction was dropped (email FCR one high, in a CI
run)."""

from __future__ import annotations

import os
from typing import Any

import orjson

from streams.feed import Feed
from tests import naive
from tests.integration.failing_app import ERROR
from tests.integration.pipeline_runner import wait_for
from tests.integration.test_pipeline import encoded, wait_until_correct

T0 = 1_767_225_600_000
INTERNAL = ("by-interaction", "by-customer", "kpi-deltas")


def carried(payload: dict[str, Any]) -> list[Any]:
    """The data and the event times (progress, clocks) an internal message carries."""
    found: list[Any] = [*payload.get("e", ()), *payload.get("f", ()), *payload.get("d", ())]
    found += [entry[2] for entry in payload.get("progress", ()) if entry[2] is not None]
    wm = payload.get("wm")
    found += [v for v in wm.values() if v is not None] if isinstance(wm, dict) else [wm]
    return [item for item in found if item is not None]


def test_a_failing_stage_stops_the_worker_and_its_restart_loses_nothing(deployment) -> None:
    traffic = [(i.topic, i.event) for i in Feed(seed=6, start_ms=T0, customers=300).contacts(300)]
    failing = deployment.start_worker(app="tests.integration.failing_app")
    deployment.produce(encoded(traffic, seed=3))

    process = failing.process
    assert process is not None
    wait_for(lambda: process.poll() is not None, 120, "the failing worker to exit")
    assert process.returncode == os.EX_SOFTWARE  # app.EXIT_STAGE_FAILED
    log = failing.log.read_text(errors="replace")
    assert "stage ingest failed; the worker exits" in log
    assert ERROR in log
    # No event ever left ingest: nothing downstream may claim a time.
    sent = [
        (topic, carried(orjson.loads(message.value)))
        for topic in INTERNAL
        for message in deployment.read_topic(f"{deployment.app_id}-{topic}")
    ]
    assert [(topic, items) for topic, items in sent if items] == []

    deployment.start_worker()
    wait_until_correct(deployment, naive.facts_of(traffic))
