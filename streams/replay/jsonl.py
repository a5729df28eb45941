"""Contract events from a JSONL file (one event per line), checked by the pipeline's decoder.

Lines are sent verbatim, so a replay delivers exactly what the file holds;
each is checked with the pipeline's own decoder first, and a line the
pipeline would reject is reported with its number and reason instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from streams.contract.decode import Limits, decode_message
from streams.contract.event import SURVEY
from streams.replay.importer import BadRow
from streams.simulator.wire import Message


@dataclass(slots=True)
class Loaded:
    messages: list[Message] = field(default_factory=list)  # in file order
    bad: list[BadRow] = field(default_factory=list)


def read_jsonl(lines: Iterable[bytes], limits: Limits, default_channel: str | None) -> Loaded:
    """Every valid line as a message; `default_channel` is for events that name none."""
    loaded = Loaded()
    for number, line in enumerate(lines, 1):
        raw = line.strip()
        if not raw:
            continue
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            loaded.bad.append(BadRow(number, f"invalid_json: {exc}"))
            continue
        if not isinstance(doc, dict):
            loaded.bad.append(
                BadRow(number, "not_an_object: replay reads one event object per line")
            )
            continue
        channel = None if doc.get("type") == SURVEY else doc.get("channel", default_channel)
        if channel is None and doc.get("type") != SURVEY:
            loaded.bad.append(BadRow(number, "no channel: cannot tell the topic (use --channel)"))
            continue
        decoded = decode_message(raw, channel, limits)
        if decoded.rejections:
            rejection = decoded.rejections[0]
            loaded.bad.append(BadRow(number, f"{rejection.reason}: {rejection.detail}"))
            continue
        event = decoded.events[0]
        key = event.customer_id.encode() if event.customer_id else None
        loaded.messages.append(Message(event.ts, channel, key, raw))
    return loaded
