"""Messages the consumer loses (Faust's fetcher around a rebalance) are found
by their offsets and read from the log: the KPIs come out as if none was
lost (streams.pipeline.continuity, streams.pipeline.refetch)."""

from __future__ import annotations

from streams.feed import Feed
from tests import naive
from tests.integration.lossy_app import INTERNAL
from tests.integration.test_pipeline import encoded, wait_until_correct

T0 = 1_767_225_600_000


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
