"""Messages the consumer loses (Faust's fetcher around a rebalance) are found
by their offsets and read again: the KPIs come out as if none was lost
(streams.pipeline.continuity)."""

from __future__ import annotations

import pytest

from streams.feed import Feed
from tests import naive
from tests.integration.lossy_app import INTERNAL
from tests.integration.test_pipeline import encoded, wait_until_correct

T0 = 1_767_225_600_000


@pytest.mark.xfail(
    reason="known gap (README, messages the consumer loses): passed in every local run, "
    "failed in the fresh-clone CI of d15c2ea (a contact short) and 388b59d (a stall)",
    strict=False,
)
def test_messages_lost_by_the_consumer_are_read_again(deployment) -> None:
    traffic = [(i.topic, i.event) for i in Feed(seed=4, start_ms=T0, customers=300).contacts(800)]
    worker = deployment.start_worker(app="tests.integration.lossy_app")
    deployment.produce(encoded(traffic, seed=2))

    wait_until_correct(deployment, naive.facts_of(traffic))

    gaps = {
        dict(labels)["topic"]: value
        for (name, labels), value in worker.samples().items()
        if name == "cc_consumer_gaps_total"
    }
    for suffix in INTERNAL:
        assert any(topic.endswith(suffix) and n > 0 for topic, n in gaps.items()), (suffix, gaps)
