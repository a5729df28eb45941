"""A Faust table whose changelog is written in produce batches, one stream of
batches per partition per commit.

`Table.send_changelog` sends each record through Faust's producer buffer
(a FutureMessage, a callback, an aiokafka `send` each). The interactions and
customers stages write one to two records per input event, and that path was
over half the worker's CPU (docs/benchmarks.md). aiokafka's batch API appends
a record for a fraction of that; the bytes written are the same as Faust's
(its own serializers), so Faust recovers the table from them as before.
Faust's serializer path alone (`Topic.prepare_key`: schema, registry, codec)
cost about 5 % of the worker's CPU, so the two shapes every stage writes, a
`str` key through the json codec and `bytes` (or a tombstone) through raw,
are encoded here directly, to the same bytes.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, MutableMapping
from typing import Any

import faust
import orjson

from streams.pipeline.right_size import right_sized


class BatchedChangelog:
    """What TableStore needs of a table (`data`, `send_changelog`), with the
    changelog records held until `send`."""

    def __init__(self, table: faust.Table, producer: Callable[[], Any]) -> None:
        """`producer`: returns the started aiokafka producer."""
        self.table = table
        self.producer = producer
        self.topic = table.changelog_topic
        self.json_keys = table.key_serializer == "json"
        """Faust's json codec is orjson with options that leave a string as it is."""
        self.pending: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)

    @property
    def data(self) -> MutableMapping[str, Any]:
        return self.table.data

    def send_changelog(
        self, partition: int | None, key: Any, value: Any, value_serializer: Any = None
    ) -> None:
        if partition is None:
            raise ValueError("a changelog record needs its partition")
        if self.json_keys and type(key) is str:
            key_bytes = right_sized(orjson.dumps(key))
        else:
            key_bytes, _ = self.topic.prepare_key(key, self.table.key_serializer)
        serializer = value_serializer or self.table.value_serializer
        if serializer == "raw" and (value is None or type(value) is bytes):
            value_bytes = value
        else:
            value_bytes, _ = self.topic.prepare_value(value, serializer)
        self.pending[partition].append((key_bytes, value_bytes))

    async def send(self) -> None:
        """Every held record, in order per partition; returns once Kafka has them."""
        pending, self.pending = self.pending, defaultdict(list)
        if not pending:
            return
        try:
            await self._send(pending)
        except BaseException:
            # Not known to be in Kafka: held again, ahead of any written since,
            # for the next commit (sending a record twice is harmless: the last
            # value of a key wins).
            for partition, records in pending.items():
                self.pending[partition][:0] = records
            raise

    async def _send(self, pending: dict[int, list[tuple[bytes, bytes | None]]]) -> None:
        producer = self.producer()
        name = self.topic.get_topic_name()
        delivered = []
        for partition, records in sorted(pending.items()):
            batch = producer.create_batch()
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    delivered.append(await producer.send_batch(batch, name, partition=partition))
                    batch = producer.create_batch()
                    # The first record of a batch always fits.
                    batch.append(key=key, value=value, timestamp=None)
            delivered.append(await producer.send_batch(batch, name, partition=partition))
        await asyncio.gather(*delivered)
