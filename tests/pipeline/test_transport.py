"""The worker's Kafka consumer waits at most FETCH_MAX_WAIT_MS for a fetch that
finds nothing new: with Faust's 1.5 s, partitions that drain unevenly starve
the others (streams.pipeline.transport)."""

import asyncio

from streams.pipeline import transport
from streams.pipeline.app import MAX_FETCH_BYTES
from streams.pipeline.app import app as production


def worker_consumer(app: transport.App) -> dict[str, object]:
    """The aiokafka consumer Faust's consumer thread makes for a worker, as
    AIOKafkaConsumer.start() will read it."""

    async def make() -> dict[str, object]:
        consumer = app.consumer._thread._create_worker_consumer(app.transport)  # type: ignore[attr-defined]
        try:
            return {
                "fetch_max_wait_ms": consumer._fetch_max_wait_ms,
                "max_partition_fetch_bytes": consumer._max_partition_fetch_bytes,
                "group_id": consumer._group_id,
            }
        finally:
            await consumer.stop()

    return asyncio.run(make())


def test_the_pipeline_worker_waits_at_most_the_short_fetch_wait() -> None:
    made = worker_consumer(production)
    assert made["fetch_max_wait_ms"] == transport.FETCH_MAX_WAIT_MS < 1500


def test_only_the_fetch_wait_differs_from_fausts_consumer() -> None:
    app = transport.App(
        "transport-test",
        broker="kafka://127.0.0.1:1",
        store="memory://",
        consumer_max_fetch_size=MAX_FETCH_BYTES,
    )
    assert worker_consumer(app) == {
        "fetch_max_wait_ms": transport.FETCH_MAX_WAIT_MS,
        "max_partition_fetch_bytes": MAX_FETCH_BYTES,
        "group_id": "transport-test",
    }
