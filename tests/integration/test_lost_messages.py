"""Messages the consumer loses (Faust's fetcher around a rebalance) are found
by their offsets and read from the log, as is the end of an input partition
that stalls with messages unread: the KPIs come out as if none was lost
(streams.pipeline.continuity, streams.pipeline.refetch). Messages read from
the log that the consumer delivers after all are taken once: the KPIs and
`cc_events_total` count them once."""

from __future__ import annotations

from kafka import KafkaConsumer

from streams.feed import Feed, event_ms
from streams.pipeline.continuity import STALL_S
from tests import naive
from tests.integration.lossy_app import INTERNAL, LOST
from tests.integration.pipeline_runner import INPUTS, wait_for
from tests.integration.test_pipeline import encoded, wait_until_correct

T0 = 1_767_225_600_000


def test_messages_lost_by_the_consumer_are_read_again(deployment, kafka_admin) -> None:
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
    for name in INPUTS:
        assert any(topic.split(".")[0] == name and n > 0 for topic, n in gaps.items()), (name, gaps)

    # The messages read from the log were acknowledged too: the group's
    # offsets move past the lost ones (they would stay there for good, and a
    # restart would read everything after them again).
    consumer = KafkaConsumer(bootstrap_servers=deployment.kafka)
    stuck: dict = {}
    try:

        def past_the_lost() -> bool:
            committed = kafka_admin.list_group_offsets(deployment.app_id)[deployment.app_id]
            internal = [tp for tp in committed if tp.topic.endswith(INTERNAL)]
            ends = consumer.end_offsets(internal)
            stuck.clear()
            stuck.update(
                {
                    tp: (committed[tp].offset, ends[tp])
                    for tp in internal
                    if ends[tp] > max(LOST) + 1 and committed[tp].offset <= max(LOST)
                }
            )
            return bool(internal) and not stuck

        try:
            wait_for(past_the_lost, 30, "the group's offsets past the lost messages")
        except AssertionError as error:
            raise AssertionError(f"{error}; (committed, end): {stuck}") from None
    finally:
        consumer.close()

    # The input tails taken and held back come after all, with the next
    # input: taken once, as the stall check read them from the log. The next
    # input loses its tails too, on every input partition at once: they are
    # read after one stall wait, paused for alignment or not, not one
    # partition after the other (2 to 3 minutes before continuity.waiting).
    later = Feed(seed=5, start_ms=event_ms(traffic[-1][1]), customers=300, run="later-")
    more = [(i.topic, i.event) for i in later.contacts(200)]
    deployment.produce(encoded(more, seed=3))
    wait_until_correct(deployment, naive.facts_of(traffic + more), timeout=6 * STALL_S)
    assert "input messages delivered late" in worker.log.read_text()
    counted = sum(v for (n, _), v in worker.samples().items() if n == "cc_events_total")
    assert counted == len(traffic) + len(more)
