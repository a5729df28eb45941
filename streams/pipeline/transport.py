"""Faust's Kafka transport, with a fetch wait short enough not to starve input.

aiokafka keeps one fetch request in flight per broker, and asks only for the
partitions that have nothing buffered. Faust creates its consumer with a fetch
wait of 1.5 s (hard-coded in faust-streaming 0.15, pinned in pyproject.toml),
so a fetch for partitions with nothing new sits at the broker for 1.5 s, and
every partition of that broker whose buffer runs empty meanwhile waits behind
it. A worker reading a backlog whose partitions drain unevenly (a replay, a
restart after an outage, a second worker joining) then reads its busy
partitions one fetch (`app.MAX_FETCH_BYTES` each) per 1.5 s and idles: two
workers on one backlog did 1.2-1.3x one, each at 40 % of a core
(docs/benchmarks.md, "The fetch wait").
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 100
"""How long the broker may hold a fetch that finds nothing new. An idle worker
then sends ten empty fetches a second, which costs nothing measurable."""


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start(), which makes the fetcher with it.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class App(faust.App):
    """A faust.App whose worker consumer waits at most FETCH_MAX_WAIT_MS."""

    def _new_transport(self) -> _Transport:
        # Overrides a private method of faust-streaming 0.15 (pinned).
        return _Transport(self.conf.broker_consumer, self)
