"""Decode and validate input messages against the event contract (v1).

This runs for every event, so it is hand-written checks after `orjson.loads`
rather than a JSON Schema validator; `event-v1.schema.json` publishes the same
contract and tests/contract holds the two in agreement. Nothing raises out of
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
    ESCALATED,
    EVENT_TYPES,
    RESPONDED,
    STARTED,
    SURVEY,
    TRANSFERRED,
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

MIN_TS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z, inclusive
MAX_TS: Final = 4_102_444_800_000  # 2100-01-01T00:00:00Z, exclusive
ID_MAX: Final = 128  # event_id, interaction_id, customer_id, agent_id
QUEUE_MAX: Final = 64  # queue, to_queue
TEXT_MAX: Final = 128  # network, reason, priority, level

# RFC 3339 date-time with a mandatory offset, field ranges included (no leap
# second: Python cannot represent one). The schema's `ts` pattern is the same.
_RFC3339: Final = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_TYPES: Final = frozenset(EVENT_TYPES)
_CHANNELS: Final = frozenset(CHANNELS)
_NOT_SOCIAL: Final = _CHANNELS - {"social"}
_JSON_KINDS: Final[dict[type, str]] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
_DETAIL_MAX: Final = 200
_SHOWN: Final = 40  # characters of an offending value quoted in a detail


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits of the contract; all configurable."""

    max_event_bytes: int = 64 * 1024
    max_message_bytes: int = 1024 * 1024
    max_batch_events: int = 1000


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message, or one element of a batch (`index`), was rejected."""

    reason: str
    detail: str
    index: int | None


@dataclass(frozen=True, slots=True)
class Decoded:
    """The valid events of one message and the rejections of the rest."""

    events: list[Event]
    rejections: list[Rejection]


class _Invalid(Exception):
    """Raised inside the checks of one event; becomes a `Rejection`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
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
    if type(doc) is dict:
        if size > limits.max_event_bytes:
            detail = f"event is {size} bytes, limit {limits.max_event_bytes}"
            return Decoded([], [Rejection("too_large", detail, None)])
        try:
            return Decoded([_event(doc, topic_channel)], [])
        except _Invalid as bad:
            return Decoded([], [Rejection(bad.reason, bad.detail, None)])
    if type(doc) is list:
        return _batch(doc, topic_channel, limits, measure=size > limits.max_event_bytes)
    return Decoded([], [Rejection("not_an_object", f"a JSON {_kind(doc)}, not an object", None)])


def _batch(doc: list[Any], topic_channel: str | None, limits: Limits, measure: bool) -> Decoded:
    """Every element on its own. Elements are measured only when the whole
    message is larger than one event may be (`measure`): otherwise none can be."""
    if not doc:
        return Decoded([], [Rejection("empty_batch", "the batch array is empty", None)])
    if len(doc) > limits.max_batch_events:
        detail = f"{len(doc)} events in one batch, limit {limits.max_batch_events}"
        return Decoded([], [Rejection("batch_too_large", detail, None)])
    events: list[Event] = []
    rejections: list[Rejection] = []
    for index, element in enumerate(doc):
        if type(element) is not dict:
            detail = f"a JSON {_kind(element)}, not an object"
            rejections.append(Rejection("not_an_object", detail, index))
            continue
        if measure:
            size = _encoded_size(element)
            if size > limits.max_event_bytes:
                detail = f"event is {size} bytes re-encoded, limit {limits.max_event_bytes}"
                rejections.append(Rejection("too_large", detail, index))
                continue
        try:
            events.append(_event(element, topic_channel))
        except _Invalid as bad:
            rejections.append(Rejection(bad.reason, bad.detail, index))
    return Decoded(events, rejections)


def _encoded_size(element: dict[str, Any]) -> int:
    """Size of a batch element as compact JSON. orjson refuses to encode more
    than 254 levels deep (it decodes 1024), so such an element is measured by
    walking it instead."""
    try:
        return len(orjson.dumps(element))
    except orjson.JSONEncodeError:
        return _walked_size(element)


def _walked_size(value: object) -> int:
    """Compact JSON size, iteratively (any depth); escapes inside strings and
    float formatting are approximated."""
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            size += (1 + sum(len(key.encode()) + 4 for key in item)) if item else 2
            stack.extend(item.values())
        elif type(item) is list:
            size += (1 + len(item)) if item else 2
            stack.extend(item)
        elif type(item) is str:
            size += len(item.encode()) + 2
        elif item is None or item is True:
            size += 4
        elif item is False:
            size += 5
        else:
            size += len(repr(item))
    return size


def _kind(value: object) -> str:
    return _JSON_KINDS[type(value)]


def _text(doc: dict[str, Any], name: str, longest: int, required: bool = False) -> str | None:
    """A string field of 1..`longest` characters; an optional null is absent."""
    value = doc.get(name)
    if type(value) is str:
        if 0 < len(value) <= longest:
            return value
        raise _Invalid(
            "out_of_range", f"{name} must be 1 to {longest} characters, got {len(value)}"
        )
    if value is None:
        if not required:
            return None
        if name not in doc:
            raise _Invalid("missing_field", f"{name} is required")
    raise _Invalid("wrong_type", f"{name} must be a string, got {_kind(value)}")


def parse_rfc3339(text: str) -> int | None:
    """RFC 3339 date-time with a mandatory offset -> epoch ms, UTC (sub-millisecond
    digits are truncated); None when it is not one, e.g. naive or not a real date."""
    if _RFC3339.fullmatch(text) is None:
        return None
    try:
        moment = datetime.fromisoformat(text.upper())
    except ValueError:  # a day the month does not have
        return None
    return (moment - _EPOCH) // _MS


def _timestamp(doc: dict[str, Any]) -> int:
    value = doc.get("ts")
    if type(value) is int:
        ms = value
    elif type(value) is str:
        parsed = parse_rfc3339(value)
        if parsed is None:
            shown = value[:_SHOWN]
            raise _Invalid(
                "out_of_range", f"ts {shown!r} is not an RFC 3339 date-time with an offset"
            )
        ms = parsed
    elif "ts" not in doc:
        raise _Invalid("missing_field", "ts is required")
    else:
        raise _Invalid(
            "wrong_type",
            f"ts must be an RFC 3339 string or integer epoch ms, got {_kind(value)}",
        )
    if not MIN_TS <= ms < MAX_TS:
        raise _Invalid("out_of_range", "ts must be from 2000-01-01 to before 2100-01-01 (UTC)")
    return ms


def _seconds(doc: dict[str, Any], name: str) -> float | None:
    value = doc.get(name)
    if value is None:
        return None
    kind = type(value)
    if kind is not int and kind is not float:
        raise _Invalid("wrong_type", f"{name} must be a number, got {_kind(value)}")
    # NaN fails both comparisons; orjson yields no NaN or infinity, but be sure.
    if not 0 <= value < math.inf:
        raise _Invalid("out_of_range", f"{name} must be a finite number >= 0")
    return value


def _score(doc: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = doc.get(name)
    if value is None:
        return None
    if type(value) is not int:
        raise _Invalid("wrong_type", f"{name} must be an integer, got {_kind(value)}")
    if not low <= value <= high:
        raise _Invalid("out_of_range", f"{name} must be an integer from {low} to {high}")
    return value


def _event(doc: dict[str, Any], topic_channel: str | None) -> Event:
    """Check one event object; raise `_Invalid` on the first problem found."""
    get = doc.get
    event_id = _text(doc, "event_id", ID_MAX, required=True)
    kind = get("type")
    if type(kind) is not str or kind not in _TYPES:
        if "type" not in doc:
            raise _Invalid("missing_field", "type is required")
        if type(kind) is not str:
            raise _Invalid("wrong_type", f"type must be a string, got {_kind(kind)}")
        raise _Invalid("unknown_type", f"unknown event type {kind[:_SHOWN]!r}")
    ts = _timestamp(doc)
    interaction_id = _text(doc, "interaction_id", ID_MAX, required=True)

    named = get("channel")
    if named is not None and (type(named) is not str or named not in _CHANNELS):
        if type(named) is not str:
            raise _Invalid("wrong_type", f"channel must be a string, got {_kind(named)}")
        shown = named[:_SHOWN]
        raise _Invalid("out_of_range", f"channel {shown!r} is not one of {', '.join(CHANNELS)}")
    if topic_channel is None:
        if kind != SURVEY:
            raise _Invalid("unknown_type", f"{kind} does not belong on the surveys topic")
        channel = named
    elif named is None or named == topic_channel:
        channel = topic_channel
    else:
        raise _Invalid("channel_mismatch", f"channel {named!r} on the {topic_channel} topic")

    started = kind == STARTED
    customer_id = _text(doc, "customer_id", ID_MAX, required=started)
    queue = _text(doc, "queue", QUEUE_MAX, required=started)
    network = _text(doc, "network", TEXT_MAX, required=started and channel == "social")
    if channel in _NOT_SOCIAL:
        network = None
    agent_id = _text(doc, "agent_id", ID_MAX, required=kind == RESPONDED)
    reason = _text(doc, "reason", TEXT_MAX)
    priority = _text(doc, "priority", TEXT_MAX)

    # Type-specific fields are read only on their own type; elsewhere they
    # are unknown extra fields, allowed and ignored.
    resolved = talk = hold = wrap = to_queue = level = csat = nps = ces = None
    if kind == ENDED:
        resolved = get("resolved")
        if type(resolved) is not bool:
            if "resolved" not in doc:
                raise _Invalid("missing_field", "resolved is required on contact.ended")
            raise _Invalid("wrong_type", f"resolved must be a boolean, got {_kind(resolved)}")
        talk = _seconds(doc, "talk_seconds")
        hold = _seconds(doc, "hold_seconds")
        wrap = _seconds(doc, "wrap_seconds")
    elif kind == SURVEY:
        csat = _score(doc, "csat", 1, 5)
        nps = _score(doc, "nps", 0, 10)
        ces = _score(doc, "ces", 1, 7)
        if csat is None and nps is None and ces is None:
            raise _Invalid("missing_field", "survey.answered needs at least one of csat, nps, ces")
    elif kind == TRANSFERRED:
        to_queue = _text(doc, "to_queue", QUEUE_MAX)
    elif kind == ESCALATED:
        number = get("level")
        # An integer level (a tier) is kept as its decimal string.
        level = str(number) if type(number) is int else _text(doc, "level", TEXT_MAX)

    return Event(
        event_id,  # type: ignore[arg-type]  # required=True: never None
        kind,
        ts,
        interaction_id,  # type: ignore[arg-type]
        channel,
        customer_id,
        queue,
        network,
        agent_id,
        reason,
        priority,
        resolved,
        talk,
        hold,
        wrap,
        to_queue,
        level,
        csat,
        nps,
        ces,
    )
