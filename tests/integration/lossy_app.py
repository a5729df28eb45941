"""The production app on a consumer that loses messages, as Faust's does
around a rebalance: the messages at offsets `LOST` of every partition of the
internal topics never reach their stage the first time they are fetched, and
neither do the input messages from offset `INPUT_TAIL` on: the end of each
input partition, with no message after it to show the loss."""

from __future__ import annotations

from typing import Any

from faust.transport.conductor import Conductor

from tests.integration.pipeline_runner import INPUTS

LOST = (3, 4, 8)
INTERNAL = ("-by-interaction", "-by-customer", "-kpi-deltas")
INPUT_TAIL = 20
_lost: set[tuple[str, int, int]] = set()
_compile = Conductor._compile_message_handler


def _lossy_handler(self: Conductor) -> Any:
    deliver = _compile(self)

    async def on_message(message: Any) -> Any:
        where = (message.topic, message.partition, message.offset)
        if where in _lost:
            return await deliver(message)
        internal = message.topic.endswith(INTERNAL) and message.offset in LOST
        tail = message.topic.split(".")[0] in INPUTS and message.offset >= INPUT_TAIL
        if internal or tail:
            _lost.add(where)
            return None
        return await deliver(message)

    return on_message


Conductor._compile_message_handler = _lossy_handler  # type: ignore[method-assign]

from streams.pipeline.app import app  # noqa: E402  (after the patch, on purpose)

__all__ = ["app"]
