"""Messages a stage never received, read straight from the log.

Faust can lose fetched messages around a rebalance (streams.pipeline.continuity
says how they are found). Seeking Faust's own consumer back to fetch them again
races its fetcher, which keeps a read position of its own and drops what lies
behind it; a stall and a lost contact were seen that way. So the missing range
is read by a separate consumer of our own, without a group: it reads exactly
the offsets asked for, and what it finds is processed before the message that
showed the gap. A range with no records (transaction markers, compaction, or
records already deleted by retention) comes back empty, so a gap in the log
itself costs one fetch and is then accepted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

log = logging.getLogger(__name__)

POLL_MS = 500
DEADLINE_S = 30.0
"""How long one attempt may take before it is given up and retried."""
RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


class Refetcher:
    """A kafka-python consumer, used from one thread at a time (`_lock`), made
    on first use: most workers never need it."""

    def __init__(self, kafka_args: dict[str, Any]) -> None:
        self._kafka_args = kafka_args
        self._consumer: Any = None
        self._lock = asyncio.Lock()

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        """The records of `topic`[`partition`] at offsets start..end-1 that the
        log still holds. Retried until the broker answers: a stage cannot go on
        past the gap without them."""
        async with self._lock:
            while True:
                try:
                    return await asyncio.to_thread(self._read, topic, partition, start, end)
                except (KafkaError, OSError) as error:
                    log.warning(
                        "%s[%d]: reading offsets %d..%d again failed (%s); retrying",
                        topic,
                        partition,
                        start,
                        end - 1,
                        error,
                    )
                    self.close()
                    await asyncio.sleep(RETRY_S)

    def _read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                **self._kafka_args,
            )
        consumer = self._consumer
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        records: list[Record] = []
        deadline = time.monotonic() + DEADLINE_S
        # The position passes `end` once every record before it was returned;
        # control records (transaction markers) move it without a record. An
        # offset no longer in the log resets it to the log's start (earliest).
        while consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no records after {DEADLINE_S:.0f} s")
            for message in consumer.poll(timeout_ms=POLL_MS).get(tp, ()):
                if start <= message.offset < end:
                    records.append(
                        Record(message.offset, message.key, message.value, message.timestamp)
                    )
        return records

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.close()
