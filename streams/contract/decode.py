"""Decode and validate input messages against the event contract (v1).

This runs for every event, so it is hand-written checks after `orjson.loads`
rather than a JSON Schema validator; `event-v1.schema.json` publishes the same
contract and the tests hold the two in agreement. Nothing raises out of
`decode_message`: every problem becomes a `Rejection` with a machine-readable
reason, and the good elements of a batch are kept.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from streams.contract.event import (
    CHANNELS,
    ENDED,
    EVENT_TYPES,
    RESPONDED,
    STARTED,
    SURVEY,
    Event,
)

REASONS: Final = (
    "too_large",
    "invalid_json",
    "not_an_object",
    "batch_too_large",
    "empty_batch",
    "missing_field",
    "wrong_type",
    "out_of_range",
    "unknown_type",
    "channel_mismatch",
)

MIN_TS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TS: Final = 4_102_444_800_000  # 2100-01-01T00:00:00Z
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_RFC3339: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)
_TYPES: Final = frozenset(EVENT_TYPES)
_CHANNELS: Final = frozenset(CHANNELS)
_DETAIL_MAX: Final = 200


@dataclass(frozen=True, slots=True)
class Limits:
    max_event_bytes: int = 64 * 1024
    max_message_bytes: int = 1024 * 1024
    max_batch_events: int = 1000


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str
    index: int | None


@dataclass(frozen=True, slots=True)
class Decoded:
    events: list[Event]
    rejections: list[Rejection]


class _Invalid(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail[:_DETAIL_MAX]


def decode_message(raw: bytes | None, topic_channel: str | None, limits: Limits) -> Decoded:
    """One Kafka message value -> its valid events and the rejections.

    `topic_channel` is the channel the input topic implies, or None for the
    surveys topic.
    """
    if not raw:
        return Decoded([], [Rejection("invalid_json", "empty message", None)])
    size = len(raw)
    if size > limits.max_message_bytes:
        detail = f"message is {size} bytes, limit {limits.max_message_bytes}"
        return Decoded([], [Rejection("too_large", detail, None)])
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Decoded([], [Rejection("invalid_json", str(exc)[:_DETAIL_MAX], None)])
    if isinstance(doc, dict):
        if size > limits.max_event_bytes:
            detail = f"event is {size} bytes, limit {limits.max_event_bytes}"
            return Decoded([], [Rejection("too_large", detail, None)])
        try:
            return Decoded([_event(doc, topic_channel)], [])
        except _Invalid as bad:
            return Decoded([], [Rejection(bad.reason, bad.detail, None)])
    if isinstance(doc, list):
        return _batch(doc, topic_channel, limits)
    return Decoded([], [Rejection("not_an_object", f"a JSON {_kind(doc)}, not an object", None)])


def _batch(doc: list[Any], topic_channel: str | None, limits: Limits) -> Decoded:
    if not doc:
        return Decoded([], [Rejection("empty_batch", "the batch array is empty", None)])
    if len(doc) > limits.max_batch_events:
        detail = f"{len(doc)} events in one batch, limit {limits.max_batch_events}"
        return Decoded([], [Rejection("batch_too_large", detail, None)])
    events: list[Event] = []
    rejections: list[Rejection] = []
    for index, element in enumerate(doc):
        if not isinstance(element, dict):
            detail = f"a JSON {_kind(element)}, not an object"
            rejections.append(Rejection("not_an_object", detail, index))
            continue
        # An element's size is measured re-encoded (compact JSON).
        size = len(orjson.dumps(element))
        if size > limits.max_event_bytes:
            detail = f"event is {size} bytes, limit {limits.max_event_bytes}"
            rejections.append(Rejection("too_large", detail, index))
            continue
        try:
            events.append(_event(element, topic_channel))
        except _Invalid as bad:
            rejections.append(Rejection(bad.reason, bad.detail, index))
    return Decoded(events, rejections)


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _text(doc: dict[str, Any], name: str, longest: int, required: bool = False) -> str | None:
    value = doc.get(name)
    if value is None:
        if name in doc and required:
            raise _Invalid("wrong_type", f"{name} must be a string, got null")
        if required:
            raise _Invalid("missing_field", f"{name} is required")
        return None
    if type(value) is not str:
        raise _Invalid("wrong_type", f"{name} must be a string, got {_kind(value)}")
    if not 1 <= len(value) <= longest:
        raise _Invalid("out_of_range", f"{name} must be 1 to {longest} characters")
    return value


def _timestamp(doc: dict[str, Any]) -> int:
    value = doc.get("ts")
    if value is None:
        if "ts" in doc:
            raise _Invalid("wrong_type", "ts must be an RFC 3339 string or epoch milliseconds")
        raise _Invalid("missing_field", "ts is required")
    if type(value) is int:
        ms = value
    elif type(value) is str:
        ms = parse_rfc3339(value)
    else:
        raise _Invalid(
            "wrong_type", f"ts must be an RFC 3339 string or integer epoch ms, got {_kind(value)}"
        )
    if not MIN_TS <= ms < MAX_TS:
        raise _Invalid("out_of_range", "ts must be between 2000-01-01 and 2100-01-01")
    return ms


def parse_rfc3339(text: str) -> int:
    """RFC 3339 date-time with a mandatory offset -> epoch ms (sub-ms truncated)."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise _Invalid("out_of_range", f"ts {text[:40]!r} is not an RFC 3339 date-time with offset")
    date, clock, fraction, offset = match.groups()
    micro = (fraction or ".0")[1:7].ljust(6, "0")
    zone = "+00:00" if offset in ("Z", "z") else offset
    try:
        moment = datetime.fromisoformat(f"{date}T{clock}.{micro}{zone}")
    except ValueError:
        raise _Invalid("out_of_range", f"ts {text[:40]!r} is not a valid date-time") from None
    return (moment - _EPOCH) // _MS


def _number(doc: dict[str, Any], name: str) -> float | None:
    value = doc.get(name)
    if value is None:
        return None
    if type(value) not in (int, float):
        raise _Invalid("wrong_type", f"{name} must be a number, got {_kind(value)}")
    if not math.isfinite(value) or value < 0:
        raise _Invalid("out_of_range", f"{name} must be a finite number >= 0")
    return value


def _score(doc: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = doc.get(name)
    if value is None:
        return None
    if type(value) is not int:
        raise _Invalid("wrong_type", f"{name} must be an integer, got {_kind(value)}")
    if not low <= value <= high:
        raise _Invalid("out_of_range", f"{name} must be between {low} and {high}")
    return value


def _event(doc: dict[str, Any], topic_channel: str | None) -> Event:
    event_id = _text(doc, "event_id", 128, required=True)
    kind = doc.get("type")
    if kind is None:
        raise _Invalid("missing_field" if "type" not in doc else "wrong_type", "type is required")
    if type(kind) is not str:
        raise _Invalid("wrong_type", f"type must be a string, got {_kind(kind)}")
    if kind not in _TYPES:
        raise _Invalid("unknown_type", f"unknown event type {kind[:60]!r}")
    ts = _timestamp(doc)
    interaction_id = _text(doc, "interaction_id", 128, required=True)
    named = _text(doc, "channel", 16)
    if named is not None and named not in _CHANNELS:
        raise _Invalid("out_of_range", f"channel must be one of {', '.join(CHANNELS)}")
    if topic_channel is not None:
        if named is not None and named != topic_channel:
            raise _Invalid("channel_mismatch", f"channel {named!r} on the {topic_channel} topic")
        channel: str | None = topic_channel
    else:
        if kind != SURVEY:
            raise _Invalid(
                "unknown_type", f"only survey.answered belongs on the surveys topic, got {kind}"
            )
        channel = named
    started = kind == STARTED
    customer_id = _text(doc, "customer_id", 128, required=started)
    queue = _text(doc, "queue", 64, required=started)
    network = _text(doc, "network", 64, required=started and channel == "social")
    if channel != "social":
        network = None
    agent_id = _text(doc, "agent_id", 128, required=kind == RESPONDED)
    level = doc.get("level")
    if level is not None:
        if type(level) is int:
            level = str(level)
        elif type(level) is not str:
            raise _Invalid("wrong_type", f"level must be a string or integer, got {_kind(level)}")
    resolved = doc.get("resolved")
    if kind == ENDED:
        if resolved is None and "resolved" not in doc:
            raise _Invalid("missing_field", "resolved is required on contact.ended")
        if type(resolved) is not bool:
            raise _Invalid("wrong_type", f"resolved must be a boolean, got {_kind(resolved)}")
    elif resolved is not None and type(resolved) is not bool:
        raise _Invalid("wrong_type", f"resolved must be a boolean, got {_kind(resolved)}")
    csat = _score(doc, "csat", 1, 5)
    nps = _score(doc, "nps", 0, 10)
    ces = _score(doc, "ces", 1, 7)
    if kind == SURVEY and csat is None and nps is None and ces is None:
        raise _Invalid("missing_field", "survey.answered needs at least one of csat, nps, ces")
    return Event(
        event_id=event_id,  # type: ignore[arg-type]
        type=kind,
        ts=ts,
        interaction_id=interaction_id,  # type: ignore[arg-type]
        channel=channel,
        customer_id=customer_id,
        queue=queue,
        network=network,
        agent_id=agent_id,
        reason=_text(doc, "reason", 128),
        priority=_text(doc, "priority", 64),
        resolved=resolved,
        talk_seconds=_number(doc, "talk_seconds"),
        hold_seconds=_number(doc, "hold_seconds"),
        wrap_seconds=_number(doc, "wrap_seconds"),
        to_queue=_text(doc, "to_queue", 64),
        level=level,
        csat=csat,
        nps=nps,
        ces=ces,
    )
