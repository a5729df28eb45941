"""Input alignment on real Kafka (streams.pipeline.alignment): a backlog whose
topics cover the same days in very different volumes, each topic in one
partition. A fetch (up to 128 KiB per partition) covers about 20 minutes of
the calls' event time and hours of the emails', so the lighter topics run
ahead. The worker pauses
them until the calls catch up, takes none of them for stalled, resumes them
all, and the KPIs come out exactly. (What pausing saves, memory on a long
replay, is the benchmark's to measure: docs/benchmarks.md.)"""

from __future__ import annotations

import pytest
from kafka import KafkaProducer

from streams.feed import Feed
from tests import naive
from tests.integration.pipeline_runner import (
    FEED_TOPIC,
    Deployment,
    GaugeWatch,
    by_topic,
    input_gaps,
)
from tests.integration.test_pipeline import encoded, wait_until_correct

pytestmark = pytest.mark.slow

T0 = 1_767_225_600_000
HOUR_S = 3600


def produce_to_one_partition(
    deployment: Deployment, messages: list[tuple[str, bytes | None, bytes]]
) -> None:
    producer = KafkaProducer(bootstrap_servers=deployment.kafka, linger_ms=5, acks="all")
    try:
        for topic, key, value in messages:
            producer.send(deployment.topics[FEED_TOPIC[topic]], key=key, value=value, partition=0)
        producer.flush()
    finally:
        producer.close()


@pytest.mark.parametrize("deployment", [{"max_input_skew": "1h"}], indirect=True)
def test_partitions_read_ahead_wait_for_the_slowest_and_nothing_is_lost(deployment) -> None:
    traffic = [
        (i.topic, i.event) for i in Feed(seed=8, start_ms=T0, customers=10_000).contacts(12_000)
    ]
    # The whole backlog is in Kafka before the worker starts, as after an outage.
    produce_to_one_partition(deployment, encoded(traffic, seed=3))
    worker = deployment.start_worker()
    watch = GaugeWatch(worker, "cc_input_ahead_partitions", "cc_input_skew_seconds")
    try:
        wait_until_correct(deployment, naive.facts_of(traffic), timeout=300)
    finally:
        watch.stop()

    samples = worker.samples()
    pauses = by_topic(samples, "cc_input_ahead_pauses_total")
    assert sum(pauses.values()) > 0, pauses
    # The calls, densest in event time, are what the others mostly wait for.
    calls = pauses.get(deployment.topics["calls"], 0)
    assert sum(pauses.values()) - calls > calls, pauses
    assert watch.largest.get("cc_input_ahead_partitions", 0) >= 1, watch.largest
    assert watch.largest.get("cc_input_skew_seconds", 0) > HOUR_S, watch.largest
    assert "of event time ahead of the slowest input partition" in worker.log.read_text()
    # All read: nothing is paused or ahead any more.
    assert samples[("cc_input_ahead_partitions", ())] == 0
    assert samples[("cc_input_skew_seconds", ())] == 0
    # Paused partitions lost nothing and were never taken for stalled ones
    # (streams.pipeline.continuity): no input message was read from the log.
    assert not input_gaps(deployment, samples)
