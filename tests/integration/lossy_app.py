"""The production app on a consumer that loses messages, as Faust's does
around a rebalance: the messages at offsets `LOST` of every partition of the
internal topics never reach their stage the first time they are fetched, and
neither do the input messages from offset `INPUT_TAIL` on: the end of each
input partition, with no message after it to show the loss.

Faust loses messages in two places, and the input tails are lost in both: on
even partitions before its stream takes them (its fetcher), on odd ones after
(a take buffer emptied at a rebalance), when its monitor already counts them
as delivered; only ingest's own position shows those missing. The tails taken
on odd partitions come after all, late: with the first batch taken once the
stall check has read them from the log (a consumer that held them back).
The next traffic's tails are lost again, in the same two ways."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from faust import Stream
from faust.transport.conductor import Conductor

from tests.integration.pipeline_runner import INPUTS

LOST = (3, 4, 8)
INTERNAL = ("-by-interaction", "-by-customer", "-kpi-deltas")
INPUT_TAIL = 20
_lost: set[tuple[str, int, int]] = set()
_held: dict[int, list[Any]] = {}
"""Per stream, the input events it took and holds back until ingest has them
from the log."""
log = logging.getLogger(__name__)
_compile = Conductor._compile_message_handler
_noack_take = Stream.noack_take


def _loses(message: Any, delivered: bool) -> bool:
    """Whether `message` is lost here, the first time it comes: `delivered`,
    once Faust's stream has taken it."""
    where = (message.topic, message.partition, message.offset)
    if where in _lost:
        return False
    tail = message.topic.split(".")[0] in INPUTS and message.offset >= INPUT_TAIL
    if delivered:
        lost = tail and message.partition % 2 == 1
    else:
        internal = message.topic.endswith(INTERNAL) and message.offset in LOST
        lost = internal or (tail and message.partition % 2 == 0)
    if lost:
        _lost.add(where)
    return lost


def _lossy_handler(self: Conductor) -> Any:
    deliver = _compile(self)

    async def on_message(message: Any) -> Any:
        if _loses(message, delivered=False):
            return None
        return await deliver(message)

    return on_message


def _read_from_the_log(event: Any) -> bool:
    message = event.message
    taken = pipeline.ingest_stage.taken.get((message.topic, message.partition), -1)
    return bool(taken >= message.offset)


async def _lossy_take(self: Stream, max_: int, within: Any) -> AsyncIterator[Sequence[Any]]:
    async for events in _noack_take(self, max_, within):
        held, kept = _held.setdefault(id(self), []), []
        for event in list(held):
            if _read_from_the_log(event):
                held.remove(event)
                kept.append(event)
        if kept:
            log.warning("lossy_app: %d input messages delivered late", len(kept))
        for event in events:
            (held if _loses(event.message, delivered=True) else kept).append(event)
        if kept:
            yield kept


Conductor._compile_message_handler = _lossy_handler  # type: ignore[method-assign]
Stream.noack_take = _lossy_take  # type: ignore[method-assign,assignment]

from streams.pipeline import app as pipeline  # noqa: E402  (after the patch, on purpose)

app = pipeline.app

__all__ = ["app"]
