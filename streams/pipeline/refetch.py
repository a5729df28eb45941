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

It also tells where a partition's reading starts after an assignment (the
group's committed offset, asked of the broker): the offset its first message
must have; and where its log ends (streams.pipeline.stages.unread).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import OffsetSpec

from streams.pipeline.blocking import call_with_deadline

log = logging.getLogger(__name__)

EARLIEST = OffsetSpec.EARLIEST
LATEST = OffsetSpec.LATEST
POLL_MS = 500
DEADLINE_S = 30.0
"""How long one read may wait for its records before it fails and is retried."""
ATTEMPT_S = 60.0
"""How long one read may go without an answer before it is given up and tried
again with new clients (kafka-python's own request timeout is 30 s)."""
ADMIN_ATTEMPT_S = 10.0
"""The same for the admin calls (committed offsets, log ends), which a healthy
broker answers in milliseconds. Twice in CI, kafka-python's committed-offsets
call never returned after finding the group coordinator, holding the stages'
clocks until it was given up."""
CLOSE_S = 5.0
RETRY_S = 1.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


class Refetcher:
    """A kafka-python consumer and admin client, used by one call at a time
    (`_lock`). A call that fails, or gives no answer within its deadline
    (`attempt_s` for reads, `admin_attempt_s` for the admin calls;
    streams.pipeline.blocking), is tried again with new clients."""

    def __init__(
        self,
        kafka_args: dict[str, Any],
        attempt_s: float = ATTEMPT_S,
        admin_attempt_s: float = ADMIN_ATTEMPT_S,
    ) -> None:
        self._kafka_args = kafka_args
        self._attempt_s = attempt_s
        self._admin_attempt_s = admin_attempt_s
        self._clients = _Clients(kafka_args)
        self._lock = asyncio.Lock()

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        """The records of `topic`[`partition`] at offsets start..end-1 that the
        log still holds. Retried until the broker answers: a stage cannot go on
        past the gap without them."""
        what = f"{topic}[{partition}]: reading offsets {start}..{end - 1} again"
        return await self._retried(what, self._attempt_s, _read, topic, partition, start, end)

    async def starts(self, group: str, tps: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Where `group` reads each of `tps` from after an assignment: its
        committed offset, or the log's start if it has none (or retention
        deleted it). Faust's own record of committed offsets is empty for a
        partition until its recovery is over, and a partition's first
        messages can come before that."""
        what = f"{group}: reading committed offsets"
        return await self._retried(what, self._admin_attempt_s, _starts, group, tps)

    async def ends(self, tps: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The end offset of each of `tps` now. Faust learns a partition's end
        only with its first records, and after an assignment a partition with
        a backlog must hold the clocks before then."""
        return await self._retried("reading end offsets", self._admin_attempt_s, _ends, tps)

    async def _retried(self, what: str, deadline_s: float, call: Callable[..., T], *args: Any) -> T:
        async with self._lock:
            while True:
                try:
                    return await call_with_deadline(deadline_s, call, self._clients, *args)
                except Exception as error:
                    # Whatever the client raises, the stage must not die with
                    # its batch unacknowledged: it waits, and says why.
                    log.warning("%s failed (%r); retrying with new clients", what, error)
                    self._renew()
                    await asyncio.sleep(RETRY_S)

    def _renew(self) -> threading.Thread:
        """New clients for the next call. The old ones are closed in a thread
        of their own: a call given up may still be blocked in them, and the
        close may block too."""
        old, self._clients = self._clients, _Clients(self._kafka_args)
        closing = threading.Thread(target=old.close, name="refetch-close", daemon=True)
        closing.start()
        return closing

    def close(self) -> None:
        """Close the clients, waiting at most CLOSE_S."""
        self._renew().join(CLOSE_S)


class _Clients:
    """A kafka-python consumer and admin client, each made on first use."""

    def __init__(self, kafka_args: dict[str, Any]) -> None:
        self._kafka_args = kafka_args
        self._consumer: Any = None
        self._admin: Any = None

    def reader(self) -> Any:
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                **self._kafka_args,
            )
        return self._consumer

    def admin(self) -> Any:
        if self._admin is None:
            self._admin = KafkaAdminClient(**self._kafka_args)
        return self._admin

    def close(self) -> None:
        for client in (self._consumer, self._admin):
            if client is not None:
                client.close()


def _ends(clients: _Clients, tps: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
    partitions = [TopicPartition(topic, partition) for topic, partition in sorted(tps)]
    ends = clients.admin().list_partition_offsets(dict.fromkeys(partitions, LATEST))
    return {(tp.topic, tp.partition): ends[tp].offset for tp in partitions}


def _starts(clients: _Clients, group: str, tps: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
    partitions = [TopicPartition(topic, partition) for topic, partition in sorted(tps)]
    admin = clients.admin()
    committed = admin.list_group_offsets({group: partitions})[group]
    # The admin client, not the consumer: kafka-python 3.0's
    # beginning_offsets raises KeyError for a topic its metadata lacks.
    beginnings = admin.list_partition_offsets(dict.fromkeys(partitions, EARLIEST))
    return {
        (tp.topic, tp.partition): max(
            committed[tp].offset if tp in committed else -1, beginnings[tp].offset
        )
        for tp in partitions
    }


def _read(clients: _Clients, topic: str, partition: int, start: int, end: int) -> list[Record]:
    consumer = clients.reader()
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
