"""Smoke tests of the local infrastructure the pipeline relies on.

They prove that the broker started by deploy/local/kafka.sh really behaves like
the pipeline needs (keyed partitioning, consumer groups, transactions with
read_committed isolation, ready for a worker when the script returns), that
Redis serves key/value and pub/sub, and that promtool (used to check
Prometheus rules) is installed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.producer.future import RecordMetadata

from tests.integration.conftest import TEST_KAFKA_PORT, TEST_LOCAL_DIR, run_local_script

# The fresh_topics fixture (tests/integration/conftest.py).
TopicFactory = Callable[..., dict[str, str]]

pytestmark = pytest.mark.integration

POLL_TIMEOUT_S = 30.0

# A broker of the test's own, new, for what only a new broker shows.
NEW_KAFKA_PORT = int(os.environ.get("CC_TEST_NEW_KAFKA_PORT", "39092"))


def _consume_all(
    bootstrap: str,
    topic: str,
    expected: int,
    *,
    isolation_level: str = "read_uncommitted",
    settle_s: float = 0.0,
) -> list:
    """Read the topic from the beginning of every partition (no group).

    Returns once ``expected`` records arrived, then keeps polling ``settle_s``
    more seconds so that *extra* (unexpected) records would be caught too.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation_level,
        enable_auto_commit=False,
        client_id=f"cc-kpi-test-{uuid.uuid4().hex[:6]}",
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        assert partitions, f"topic {topic} has no partitions in metadata"
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        records: list = []
        deadline = time.monotonic() + POLL_TIMEOUT_S
        settle_until: float | None = None
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            if len(records) >= expected:
                settle_until = settle_until or time.monotonic() + settle_s
                if time.monotonic() >= settle_until:
                    break
        return records
    finally:
        consumer.close()


def test_produce_consume_round_trip(kafka_bootstrap: str, fresh_topics: TopicFactory) -> None:
    topic = fresh_topics(["roundtrip"], partitions=4)["roundtrip"]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    keys = [f"agent-{i}".encode() for i in range(8)]
    sent: dict[tuple[bytes, bytes], RecordMetadata] = {}
    try:
        futures = []
        for round_no in range(3):
            for key in keys:
                value = f"{key.decode()}#{round_no}".encode()
                futures.append((key, value, producer.send(topic, key=key, value=value)))
        # An explicit partition must be honoured as well.
        futures.append(
            (
                b"pinned",
                b"pinned#0",
                producer.send(topic, key=b"pinned", value=b"pinned#0", partition=3),
            )
        )
        producer.flush(timeout=POLL_TIMEOUT_S)
        for key, value, future in futures:
            sent[(key, value)] = future.get(timeout=POLL_TIMEOUT_S)
    finally:
        producer.close()

    assert sent[(b"pinned", b"pinned#0")].partition == 3
    # Same key -> same partition, every time (per-key ordering relies on it).
    partitions_by_key: dict[bytes, set[int]] = defaultdict(set)
    for (key, _), meta in sent.items():
        partitions_by_key[key].add(meta.partition)
    assert all(len(p) == 1 for p in partitions_by_key.values()), partitions_by_key
    # 8 keys over 4 partitions: the default partitioner must actually spread them.
    assert len({meta.partition for meta in sent.values()}) > 1

    # Offsets are dense and start at 0 in every partition of a fresh topic.
    offsets_by_partition: dict[int, list[int]] = defaultdict(list)
    for meta in sent.values():
        offsets_by_partition[meta.partition].append(meta.offset)
    for partition, offsets in offsets_by_partition.items():
        assert sorted(offsets) == list(range(len(offsets))), (partition, offsets)

    records = _consume_all(kafka_bootstrap, topic, len(sent), settle_s=0.5)
    assert len(records) == len(sent)
    for rec in records:
        meta = sent[(rec.key, rec.value)]
        assert (rec.topic, rec.partition, rec.offset) == (topic, meta.partition, meta.offset)
    # Within a key, records come back in the order they were produced.
    for key in keys:
        values = [r.value for r in records if r.key == key]
        assert values == [f"{key.decode()}#{n}".encode() for n in range(3)]


def test_index_files_are_small_and_still_find_offsets(
    kafka_bootstrap: str, fresh_topics: TopicFactory
) -> None:
    """The broker's index files are 1 MiB, not Kafka's 10 MiB: each is created
    sparse at full size, and its first entry faults in a read-ahead window of
    zeros; at 10 MiB, a worker's first writes held the broker for 1.5 s
    (deploy/local/kafka.sh). Reads from the middle of a partition still use it."""
    topic = fresh_topics(["indexed"], partitions=1)["indexed"]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    try:
        for n in range(2_000):  # ~1 MiB: an index entry every 4 KiB of log
            producer.send(topic, value=f"{n:06d}".encode() + b"x" * 500)
        producer.flush(timeout=POLL_TIMEOUT_S)
    finally:
        producer.close()

    partition_dir = TEST_LOCAL_DIR / f"kafka-{TEST_KAFKA_PORT}" / "data" / f"{topic}-0"
    if not partition_dir.is_dir() and os.environ.get("CC_TEST_KAFKA"):
        pytest.skip(f"CC_TEST_KAFKA is a broker not started by deploy/local: no {partition_dir}")
    indexes = sorted(partition_dir.glob("*.index")) + sorted(partition_dir.glob("*.timeindex"))
    assert indexes, f"no index files in {partition_dir}"
    assert all(path.stat().st_size <= 1024 * 1024 for path in indexes), [
        (path.name, path.stat().st_size) for path in indexes
    ]

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 1_234)
        batch: list = []
        deadline = time.monotonic() + POLL_TIMEOUT_S
        while not batch and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200).get(tp, [])
    finally:
        consumer.close()
    assert batch, "nothing read from offset 1234"
    assert (batch[0].offset, batch[0].value[:6]) == (1_234, b"001234")


def test_consumer_group_commit(kafka_bootstrap: str, fresh_topics: TopicFactory) -> None:
    """Group coordination and offset commits work (needs __consumer_offsets RF=1)."""
    topic = fresh_topics(["grouped"], partitions=4)["grouped"]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        for i in range(12):
            producer.send(topic, key=str(i).encode(), value=b"x")
        producer.flush(timeout=POLL_TIMEOUT_S)
    finally:
        producer.close()

    group = f"cc-kpi-test-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        seen = 0
        deadline = time.monotonic() + POLL_TIMEOUT_S
        while seen < 12 and time.monotonic() < deadline:
            seen += sum(len(b) for b in consumer.poll(timeout_ms=200).values())
        assert seen == 12
        consumer.commit()
        assignment = consumer.assignment()
        assert len(assignment) == 4
        end_offsets = consumer.end_offsets(list(assignment))
        assert {tp: consumer.committed(tp) for tp in assignment} == end_offsets
    finally:
        consumer.close()


def test_transactions_read_committed(kafka_bootstrap: str, fresh_topics: TopicFactory) -> None:
    """A committed transaction is visible to read_committed; an aborted one is not."""
    topic = fresh_topics(["txn"], partitions=4)["txn"]
    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        transactional_id=f"cc-kpi-test-{uuid.uuid4().hex[:8]}",
        enable_idempotence=True,
        acks="all",
    )
    try:
        producer.init_transactions()
        producer.begin_transaction()
        for i in range(6):
            producer.send(topic, key=f"k{i}".encode(), value=f"committed-{i}".encode())
        producer.commit_transaction()

        producer.begin_transaction()
        for i in range(4):
            producer.send(topic, key=f"k{i}".encode(), value=f"aborted-{i}".encode())
        producer.flush(timeout=POLL_TIMEOUT_S)
        producer.abort_transaction()
    finally:
        producer.close()

    committed = _consume_all(
        kafka_bootstrap, topic, 6, isolation_level="read_committed", settle_s=1.0
    )
    assert sorted(r.value for r in committed) == [f"committed-{i}".encode() for i in range(6)]

    # The aborted records are in the log: read_uncommitted does see them.
    everything = _consume_all(kafka_bootstrap, topic, 10, settle_s=0.5)
    assert sum(r.value.startswith(b"aborted-") for r in everything) == 4


def test_redis_set_get_and_pubsub(clean_redis: str) -> None:
    client = redis.Redis.from_url(clean_redis, decode_responses=True)
    pubsub = client.pubsub()
    try:
        assert client.set("cc:test:key", "42", ex=60)
        assert client.get("cc:test:key") == "42"
        assert client.dbsize() == 1

        channel = f"cc:test:{uuid.uuid4().hex[:8]}"
        pubsub.subscribe(channel)
        confirm = pubsub.get_message(timeout=5)
        assert confirm is not None and confirm["type"] == "subscribe"
        assert client.publish(channel, "hello") == 1  # one subscriber got it
        message = pubsub.get_message(timeout=5)
        assert message is not None
        assert (message["type"], message["channel"], message["data"]) == (
            "message",
            channel,
            "hello",
        )
    finally:
        pubsub.close()
        client.close()


def test_a_new_broker_is_ready_for_a_consumer_group(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When `kafka.sh start` returns, a consumer group finds its coordinator at
    once. A new broker creates __consumer_offsets on the first lookup and fails
    lookups until it exists; the first `make run` logged aiokafka's ERROR
    "Group Coordinator Request failed" from its worker."""
    env = {
        "CC_LOCAL_DIR": str(tmp_path),
        "CC_KAFKA_PORT": str(NEW_KAFKA_PORT),
        "CC_KAFKA_CONTROLLER_PORT": str(NEW_KAFKA_PORT + 1),
    }
    started = run_local_script("kafka.sh", "start", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    bootstrap = f"127.0.0.1:{NEW_KAFKA_PORT}"
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_topics({"ready": {"num_partitions": 1, "replication_factor": 1}})
        finally:
            admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        try:
            producer.send("ready", b"first").get(timeout=POLL_TIMEOUT_S)
        finally:
            producer.close()

        async def first_record() -> bytes | None:
            consumer = AIOKafkaConsumer(
                "ready",
                bootstrap_servers=bootstrap,
                group_id="cc-kpi-ready",
                auto_offset_reset="earliest",
            )
            await consumer.start()
            try:
                record = await asyncio.wait_for(consumer.getone(), POLL_TIMEOUT_S)
            finally:
                await consumer.stop()
            return record.value

        with caplog.at_level(logging.WARNING, logger="aiokafka"):
            assert asyncio.run(first_record()) == b"first"
        assert [r.getMessage() for r in caplog.records if r.name.startswith("aiokafka")] == []
    finally:
        stopped = run_local_script("kafka.sh", "stop", "--purge", env=env)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def test_promtool_available() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: run deploy/local/setup.sh (installs Debian's prometheus)"
    result = subprocess.run(
        [promtool, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "promtool" in (result.stdout + result.stderr)
