"""Where messages go: Kafka input topics, or a JSONL file. The only I/O of a run.

Kafka: the topic comes from the message's channel (the configured topic
names), the key and value are sent as they are. JSONL: one message value per
line, in delivery order, which is what `replay` reads back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from streams.config import Settings, Topics
from streams.connections import ServiceError, kafka_args, kafka_errors, scrub
from streams.simulator.wire import Message

if TYPE_CHECKING:
    from kafka import KafkaProducer


class Sink(Protocol):
    def send(self, message: Message) -> None: ...

    def close(self) -> None: ...


class SinkError(RuntimeError):
    """Messages could not be delivered; the message says how many and why."""


class JsonlSink:
    def __init__(self, stream: BinaryIO, owned: bool) -> None:
        self.stream = stream
        self.owned = owned  # close the stream at the end (a file we opened, not stdout)

    def send(self, message: Message) -> None:
        self.stream.write(message.value)
        self.stream.write(b"\n")

    def close(self) -> None:
        if self.owned:
            self.stream.close()
        else:
            self.stream.flush()


def topic_names(topics: Topics) -> dict[str | None, str]:
    """Message channel -> topic name (None is the surveys topic)."""
    return {channel: name for name, channel in topics.inputs().items()}


class KafkaSink:
    """kafka-python producer; delivery failures are counted and reported at close.

    `settings` gives the topics and the TLS/SASL settings; `bootstrap` may differ
    from its kafka.bootstrap (the `--bootstrap` option)."""

    def __init__(self, bootstrap: str, settings: Settings, max_request_bytes: int) -> None:
        # Imported here: kafka-python takes 0.2 s to import, JSONL runs do not need it.
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        self._kafka_error = KafkaError
        self._settings = settings
        try:
            with kafka_errors(settings, bootstrap):
                self.producer: KafkaProducer = KafkaProducer(
                    **(kafka_args(settings) | {"bootstrap_servers": bootstrap}),
                    client_id="cc-kpi-producer",
                    acks="all",
                    linger_ms=20,
                    batch_size=256 * 1024,
                    max_request_size=max_request_bytes,
                    max_block_ms=15_000,
                    bootstrap_timeout_ms=10_000,
                )
        except ServiceError as error:
            raise SinkError(f"cannot connect to {error}") from None
        self.topics = topic_names(settings.topics)
        self.failed = 0
        self.first_error: str | None = None

    def send(self, message: Message) -> None:
        topic = self.topics[message.channel]
        try:
            future = self.producer.send(topic, value=message.value, key=message.key)
        except self._kafka_error as error:
            raise SinkError(
                f"cannot send to {topic}: {scrub(str(error), self._settings)}"
            ) from None
        future.add_errback(self._failed)

    def _failed(self, error: Any) -> None:
        self.failed += 1
        if self.first_error is None:
            self.first_error = scrub(f"{type(error).__name__}: {error}", self._settings)

    def close(self) -> None:
        try:
            self.producer.flush()
        finally:
            self.producer.close()
        if self.failed:
            raise SinkError(f"{self.failed} messages were not delivered ({self.first_error})")
