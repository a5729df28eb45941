"""Simulated events for the benchmark, and pre-loading them onto Kafka topics.

Events come from `streams.feed.Feed` (every channel, surveys included), with a
fixed customer population. Each data set is written once as single-event
messages and once as JSON-array batches of the same events.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
from collections.abc import Iterator

import orjson
import uvloop
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.feed import SURVEY_TOPIC, TOPIC_OF, Feed

START_MS = 1_767_225_600_000
"""2026-01-01T00:00:00Z: the data sets are replays, read on the event clock."""
LOGICAL = {topic: topic.removeprefix("cc.") for topic in (*TOPIC_OF.values(), SURVEY_TOPIC)}
Message = tuple[str, bytes | None, bytes]
"""(logical topic: calls|chats|emails|social|surveys, key, value)."""


def events(count: int, customers: int, gap_ms: int, seed: int = 7) -> Iterator[Message]:
    """`count` feed events in event-time order, keyed by customer like a producer would."""
    feed = Feed(seed, START_MS, customers=customers, gap_ms=gap_ms, run=f"s{seed}-")
    for n, (_, item) in enumerate(feed.live()):
        if n == count:
            return
        yield LOGICAL[item.topic], item.key.encode(), orjson.dumps(item.event)


def batched(messages: Iterator[Message], size: int) -> Iterator[Message]:
    """Consecutive events of a topic as JSON arrays of `size` (the last ones shorter)."""
    pending: dict[str, list[bytes]] = {}
    for topic, _key, value in messages:
        group = pending.setdefault(topic, [])
        group.append(value)
        if len(group) == size:
            yield topic, None, b"[" + b",".join(group) + b"]"
            group.clear()
    for topic, group in pending.items():
        if group:
            yield topic, None, b"[" + b",".join(group) + b"]"


logging.getLogger("aiokafka").setLevel(logging.ERROR)
"""Fresh topics answer "not leader" for a moment; the producer retries."""


async def recreate(bootstrap: str, names: list[str], partitions: int) -> None:
    """Delete and create topics, so that a data set is exactly what was produced."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        gone = [n for n in names if n in existing]
        if gone:
            await admin.delete_topics(gone)
            for _ in range(100):
                if not set(await admin.list_topics()) & set(gone):
                    break
                await asyncio.sleep(0.2)
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


RECORD_BATCH_BYTES = 16 * 1024
"""The record batches the data is written in: the Java client's default
`batch.size` (and aiokafka's and kafka-python's), what a contact center's
systems or Kafka Connect write by default. A fetch returns whole batches, so
their size is part of how far ahead in event time one fetch of a partition
reads (docs/benchmarks.md, "The skew, looked into")."""


async def produce(bootstrap: str, topics: dict[str, str], messages: Iterator[Message]) -> int:
    """Send everything (acks=all) and return the number of messages."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        max_batch_size=RECORD_BATCH_BYTES,
        max_request_size=4 << 20,
    )
    await producer.start()
    sent = 0
    try:
        pending = []
        for topic, key, value in messages:
            pending.append(await producer.send(topics[topic], value=value, key=key))
            sent += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


def main() -> None:
    """python -m bench.data BOOTSTRAP PREFIX FROM TO CUSTOMERS GAP_MS BATCH: produce
    events FROM..TO (exclusive) of the seeded stream, so that a data set can be
    fed in steps (the memory part); prints the number of messages."""
    bootstrap, prefix, start, end, customers, gap_ms, batch = sys.argv[1:]
    topics = {name: f"{prefix}.{name}" for name in LOGICAL.values()}
    stream = itertools.islice(events(int(end), int(customers), int(gap_ms)), int(start), None)
    if int(batch) > 1:
        stream = batched(stream, int(batch))
    print(uvloop.run(produce(bootstrap, topics, stream)), flush=True)


if __name__ == "__main__":
    main()
