"""Delivery faults on request, to test that the pipeline survives real producers.

Each fault changes how a message is delivered, never the simulated contact:
duplicates (the same message again, later), bounded out-of-order delivery,
late delivery (beyond the pipeline's allowed lateness), and extra malformed
messages of every kind the contract rejects. Faults draw from their own
seeded generator, so the same seed gives the same faults, and switching them
on does not change the simulated traffic.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from heapq import heappop, heappush
from itertools import count
from typing import Any, Final

import orjson

from streams.simulator.wire import Message

DUPLICATE_WITHIN_MS: Final = 60_000


@dataclass(frozen=True, slots=True)
class Faults:
    duplicates: float = 0.0  # share of messages delivered twice
    disorder: float = 0.0  # share delivered late by up to `disorder_ms` (within lateness)
    disorder_ms: int = 120_000
    late: float = 0.0  # share delivered `late_ms` or more after their event time
    late_ms: int = 900_000
    malformed: float = 0.0  # extra malformed messages, per message

    @property
    def active(self) -> bool:
        return any((self.duplicates, self.disorder, self.late, self.malformed))


def inject(messages: Iterable[Message], faults: Faults, seed: int) -> Iterator[Message]:
    """The messages (in delivery-time order) with the faults applied; each
    message's `at` becomes its delivery time."""
    rng = random.Random(f"faults-{seed}")
    pending: list[tuple[int, int, Message]] = []
    order = count()
    for message in messages:
        while pending and pending[0][0] <= message.at:
            yield heappop(pending)[2]
        deliver = message.at
        draw = rng.random()
        if draw < faults.late:
            deliver += faults.late_ms + rng.randrange(60_000)
        elif draw < faults.late + faults.disorder:
            deliver += rng.randrange(1, faults.disorder_ms + 1)
        heappush(pending, (deliver, next(order), replace(message, at=deliver)))
        if rng.random() < faults.duplicates:
            again = message.at + rng.randrange(1, DUPLICATE_WITHIN_MS)
            heappush(pending, (again, next(order), replace(message, at=again)))
        if rng.random() < faults.malformed:
            heappush(pending, (message.at, next(order), malform(message, rng)))
    while pending:
        yield heappop(pending)[2]


def _truncated(value: bytes, event: dict[str, Any]) -> bytes:
    return value[: len(value) // 2]


def _no_interaction(value: bytes, event: dict[str, Any]) -> bytes:
    event.pop("interaction_id", None)
    return orjson.dumps(event)


def _ts_wrong_type(value: bytes, event: dict[str, Any]) -> bytes:
    return orjson.dumps({**event, "ts": True})


def _ts_out_of_range(value: bytes, event: dict[str, Any]) -> bytes:
    return orjson.dumps({**event, "ts": "1990-01-01T00:00:00Z"})


def _unknown_type(value: bytes, event: dict[str, Any]) -> bytes:
    return orjson.dumps({**event, "type": "contact.teleported"})


def _not_an_object(value: bytes, event: dict[str, Any]) -> bytes:
    return b'"not an event"'


MALFORMATIONS: Final[tuple[Callable[[bytes, dict[str, Any]], bytes], ...]] = (
    _truncated,
    _no_interaction,
    _ts_wrong_type,
    _ts_out_of_range,
    _unknown_type,
    _not_an_object,
)
"""Invalid JSON, missing field, wrong type, out of range, unknown type, not an object."""


def malform(message: Message, rng: random.Random) -> Message:
    """A broken copy of a (single-event) message, sent on its own."""
    spoil = rng.choice(MALFORMATIONS)
    value = spoil(message.value, orjson.loads(message.value))
    return replace(message, value=value, alone=True)
