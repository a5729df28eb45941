"""The raw ceiling: a plain aiokafka consumer that reads and orjson-decodes every
message and does nothing else. Prints one JSON line: when timing started and at
which count, when it ended, the count.

Usage: python -m bench.raw BOOTSTRAP GROUP EXPECTED_EVENTS SKIP_EVENTS TOPIC...
Timing starts once SKIP_EVENTS are read (start-up and the first fetch left out).
"""

from __future__ import annotations

import sys
import time

import orjson
import uvloop
from aiokafka import AIOKafkaConsumer


async def consume(bootstrap: str, group: str, expected: int, skip: int, topics: list[str]) -> dict:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
    )
    await consumer.start()
    count, first, first_count = 0, 0.0, 0
    try:
        while count < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=200)
            for records in batches.values():
                for record in records:
                    value = orjson.loads(record.value)
                    count += len(value) if isinstance(value, list) else 1
            if not first and count >= skip:
                first, first_count = time.time(), count
        return {"first": first, "first_count": first_count, "last": time.time(), "count": count}
    finally:
        await consumer.stop()


def main() -> None:
    bootstrap, group, expected, skip, *topics = sys.argv[1:]
    result = uvloop.run(consume(bootstrap, group, int(expected), int(skip), topics))
    print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
