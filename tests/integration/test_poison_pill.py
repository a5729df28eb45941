"""A message the KPI code fails on is dead-lettered with its reason, and the
partition it sits in keeps flowing: everything after it is counted."""

from __future__ import annotations

from typing import Any

import orjson

from streams.feed import Feed
from tests import naive
from tests.integration.pipeline_runner import wait_for
from tests.integration.poisoned_app import POISON
from tests.integration.test_pipeline import encoded, wait_until_correct

T0 = 1_767_225_600_000


def poison_of(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "interaction_id": POISON, "event_id": "poison-event"}


def test_a_poison_pill_is_dead_lettered_and_the_partition_keeps_flowing(deployment):
    traffic = [(i.topic, i.event) for i in Feed(seed=3, start_ms=T0, customers=200).contacts(600)]
    middle = len(traffic) // 2
    topic, first = next((t, e) for t, e in traffic[middle:] if e["type"] == "contact.started")
    poisoned = [*traffic[:middle], (topic, poison_of(first)), *traffic[middle:]]
    worker = deployment.start_worker(app="tests.integration.poisoned_app")
    deployment.produce(encoded(poisoned, seed=1))

    # Everything but the poison is counted, including what came after it.
    wait_until_correct(deployment, naive.facts_of(traffic))

    def dead_letters() -> list[Any]:
        return [
            m
            for m in deployment.read_topic("deadletter")
            if dict(m.headers).get("reason") == b"processing_error"
        ]

    [letter] = wait_for(dead_letters, 30, "the poison pill in cc.deadletter")
    headers = dict(letter.headers)
    assert headers["source_topic"].decode().endswith("-by-interaction")
    assert b"ZeroDivisionError: planted bug" in headers["detail"]
    assert [e["interaction_id"] for e in orjson.loads(letter.value)] == [POISON]
    assert worker.process is not None and worker.process.poll() is None
    samples = worker.samples()
    assert any(
        name == "cc_deadletter_total" and dict(labels).get("reason") == "processing_error"
        for name, labels in samples
    )
