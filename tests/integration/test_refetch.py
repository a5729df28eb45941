"""A missing range is read from the real log: exactly its records, none for
transaction markers or records retention deleted; and a partition's reading
starts where its group committed (streams.pipeline.refetch)."""

from __future__ import annotations

import asyncio

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from streams.pipeline.refetch import Refetcher


def read(bootstrap: str, topic: str, start: int, end: int) -> list[tuple[int, bytes | None]]:
    refetcher = Refetcher({"bootstrap_servers": bootstrap})
    try:
        records = asyncio.run(refetcher.read(topic, 0, start, end))
    finally:
        refetcher.close()
    return [(r.offset, r.value) for r in records]


def produce(bootstrap: str, topics: list[str], count: int) -> None:
    """`count` messages m0, m1, ... to partition 0 of each topic."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for topic in topics:
        for i in range(count):
            producer.send(topic, value=b"m%d" % i, partition=0)
    producer.flush()
    producer.close()


def test_a_range_is_read_exactly(kafka_bootstrap: str, fresh_topics) -> None:
    topic = fresh_topics(["log"], partitions=1)["log"]
    produce(kafka_bootstrap, [topic], 20)

    assert read(kafka_bootstrap, topic, 5, 12) == [(o, b"m%d" % o) for o in range(5, 12)]
    assert read(kafka_bootstrap, topic, 19, 20) == [(19, b"m19")]


def test_transaction_markers_give_no_records(kafka_bootstrap: str, fresh_topics) -> None:
    topic = fresh_topics(["log"], partitions=1)["log"]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=topic)
    producer.init_transactions()
    for transaction in range(2):
        producer.begin_transaction()
        for i in range(3):
            producer.send(topic, value=b"t%d-%d" % (transaction, i), partition=0)
        producer.commit_transaction()
    producer.close()

    # Offsets 0-2, a marker at 3, 4-6, a marker at 7.
    assert read(kafka_bootstrap, topic, 3, 4) == []
    assert [offset for offset, _ in read(kafka_bootstrap, topic, 0, 7)] == [0, 1, 2, 4, 5, 6]


def test_records_deleted_by_retention_are_not_waited_for(
    kafka_bootstrap: str, fresh_topics, kafka_admin
) -> None:
    topic = fresh_topics(["log"], partitions=1)["log"]
    produce(kafka_bootstrap, [topic], 10)
    kafka_admin.delete_records({TopicPartition(topic, 0): 6}, timeout_ms=30_000)

    assert read(kafka_bootstrap, topic, 2, 5) == []
    assert read(kafka_bootstrap, topic, 2, 8) == [(6, b"m6"), (7, b"m7")]


def test_a_partition_starts_at_the_groups_committed_offset(
    kafka_bootstrap: str, fresh_topics, kafka_admin
) -> None:
    """Or at the log's start: without a committed offset, or past a committed
    offset that retention deleted."""
    topics = fresh_topics(["committed", "never", "deleted"], partitions=1)
    produce(kafka_bootstrap, list(topics.values()), 10)
    group = f"group-{topics['committed']}"
    committer = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    tps = {name: TopicPartition(topic, 0) for name, topic in topics.items()}
    committer.assign([tps["committed"], tps["deleted"]])
    committer.commit(
        {
            tps["committed"]: OffsetAndMetadata(7, "", -1),
            tps["deleted"]: OffsetAndMetadata(2, "", -1),
        }
    )
    committer.close()
    kafka_admin.delete_records({tps["deleted"]: 4, tps["never"]: 3}, timeout_ms=30_000)

    refetcher = Refetcher({"bootstrap_servers": kafka_bootstrap})
    try:
        starts = asyncio.run(refetcher.starts(group, {(tp.topic, 0) for tp in tps.values()}))
    finally:
        refetcher.close()
    assert starts == {
        (topics["committed"], 0): 7,
        (topics["never"], 0): 3,
        (topics["deleted"], 0): 4,
    }


def test_where_a_partitions_log_ends(kafka_bootstrap: str, fresh_topics) -> None:
    topics = fresh_topics(["ten", "empty"], partitions=2)
    produce(kafka_bootstrap, [topics["ten"]], 10)
    refetcher = Refetcher({"bootstrap_servers": kafka_bootstrap})
    sources = {(topic, p) for topic in topics.values() for p in (0, 1)}
    try:
        ends = asyncio.run(refetcher.ends(sources))
    finally:
        refetcher.close()
    assert ends == {
        (topics["ten"], 0): 10,
        (topics["ten"], 1): 0,
        (topics["empty"], 0): 0,
        (topics["empty"], 1): 0,
    }
