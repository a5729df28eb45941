"""Contract events as the messages producers send: topic, key and JSON value.

Shared by the simulator and the replay so that both send exactly what the
contract asks of a producer: one event per message keyed by `customer_id`, or
JSON array batches of at most `size` events and `max_bytes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from streams.contract.event import SURVEY


@dataclass(frozen=True, slots=True)
class Message:
    at: int  # event time (epoch ms) at which it is delivered: drives pacing and progress
    channel: str | None  # the channel of its input topic; None = the surveys topic
    key: bytes | None
    value: bytes
    events: int = 1  # how many events it carries (a batch carries many)
    alone: bool = False  # never batched (a deliberately malformed message)


@lru_cache(maxsize=4096)
def _minute(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, tz=UTC).strftime("%Y-%m-%dT%H:%M:")


def rfc3339(ms: int) -> str:
    """Epoch ms -> '2026-11-23T09:15:02.120Z' (UTC, always milliseconds)."""
    minute, rest = divmod(ms, 60_000)
    return f"{_minute(minute)}{rest // 1000:02d}.{rest % 1000:03d}Z"


def topic_channel(event: dict[str, Any]) -> str | None:
    """Surveys go to the surveys topic whatever channel they name."""
    return None if event.get("type") == SURVEY else event.get("channel")


def encode(event: dict[str, Any]) -> Message:
    """An event whose `ts` is epoch ms -> its message (ts as RFC 3339)."""
    at = event["ts"]
    customer = event.get("customer_id")
    value = orjson.dumps({**event, "ts": rfc3339(at)})
    return Message(at, topic_channel(event), customer.encode() if customer else None, value)


def batched(
    messages: Iterable[Message], size: int, max_bytes: int, linger_ms: int
) -> Iterator[Message]:
    """Consecutive messages of the same topic joined into JSON arrays (unkeyed).

    A batch is sent when it holds `size` events, when one more would pass
    `max_bytes`, or when the stream has moved `linger_ms` of event time past
    its first message, so paced runs are not held back.
    """
    pending: dict[str | None, list[Message]] = {}
    weights: dict[str | None, int] = {}
    for message in messages:
        for channel in [c for c, group in pending.items() if message.at - group[0].at >= linger_ms]:
            yield _join(pending.pop(channel))
        if message.alone:
            yield message
            continue
        group = pending.get(message.channel)
        if group is not None and weights[message.channel] + len(message.value) + 1 > max_bytes:
            yield _join(pending.pop(message.channel))
            group = None
        if group is None:
            group = pending[message.channel] = []
            weights[message.channel] = 1  # "[" and "]", less the comma the first one has not
        group.append(message)
        weights[message.channel] += len(message.value) + 1
        if len(group) >= size:
            yield _join(pending.pop(message.channel))
    for group in pending.values():
        yield _join(group)


def _join(group: list[Message]) -> Message:
    if len(group) == 1:
        return group[0]
    value = b"[" + b",".join(m.value for m in group) + b"]"
    return Message(group[-1].at, group[0].channel, None, value, events=len(group))
