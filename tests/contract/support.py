"""Shared by the contract tests: good sample events, the published JSON Schema
with a date-time format check, and a strategy for near-valid events."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from importlib.resources import files
from typing import Any

import orjson
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from streams.contract import Decoded, Limits, Rejection, decode_message
from streams.contract.event import CHANNELS, EVENT_TYPES, SURVEY

LIMITS = Limits()
TOPIC_CHANNELS = ("call", "chat", "email", "social", None)  # None: cc.surveys

SCHEMA: dict[str, Any] = json.loads(
    files("streams.contract").joinpath("event-v1.schema.json").read_text("utf-8")
)

# jsonschema checks "date-time" only with the optional rfc3339-validator
# package; this check is written from RFC 3339 section 5.6 on its own, so the
# schema is never judged by the decoder's own parser.
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))",
    re.ASCII,
)
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time")
def is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    offset_hours, offset_minutes = match.group(9), match.group(10)
    return offset_hours is None or (int(offset_hours) < 24 and int(offset_minutes) < 60)


EVENT_SCHEMA = Draft202012Validator(SCHEMA, format_checker=FORMATS)
BATCH_SCHEMA = Draft202012Validator(
    {"$ref": SCHEMA["$id"] + "#/$defs/batch"},
    registry=Registry().with_resource(SCHEMA["$id"], Resource.from_contents(SCHEMA)),
    format_checker=FORMATS,
)


def schema_accepts(doc: Any, topic_channel: str | None) -> bool:
    """What the schema says about `doc` on a topic, with the topic rules it can
    express: a channel topic supplies the channel (an event naming another one
    is rejected), and the surveys topic carries only survey.answered."""
    if not isinstance(doc, dict):
        return False
    if topic_channel is None:
        return doc.get("type") == SURVEY and EVENT_SCHEMA.is_valid(doc)
    if doc.get("channel") not in (None, topic_channel):
        return False
    return EVENT_SCHEMA.is_valid({**doc, "channel": topic_channel})


def decode(doc: Any, topic_channel: str | None = "call", limits: Limits = LIMITS) -> Decoded:
    return decode_message(orjson.dumps(doc), topic_channel, limits)


def rejection(doc: Any, topic_channel: str | None = "call") -> Rejection:
    """The one rejection of a single-event message that must be rejected."""
    decoded = decode(doc, topic_channel)
    assert decoded.events == []
    assert len(decoded.rejections) == 1
    return decoded.rejections[0]


# --- good events: (topic channel, event) ----------------------------------

STARTED_CALL: dict[str, Any] = {
    "event_id": "acd-20240501-000173",
    "type": "contact.started",
    "ts": "2024-05-01T09:00:00.250Z",
    "interaction_id": "call-7781",
    "customer_id": "cust-42",
    "queue": "billing",
    "reason": "invoice",
    "priority": "high",
}
GOOD: dict[str, tuple[str | None, dict[str, Any]]] = {
    "started_call": ("call", STARTED_CALL),
    "started_social": (
        "social",
        {
            "event_id": "soc-9f2c",
            "type": "contact.started",
            "ts": "2024-05-01T11:00:00+02:00",
            "interaction_id": "fb-thread-5521",
            "customer_id": "cust-77",
            "channel": "social",
            "queue": "social-care",
            "network": "facebook",
        },
    ),
    "responded_chat": (
        "chat",
        {
            "event_id": "chat-ev-2",
            "type": "agent.responded",
            "ts": 1714554045000,
            "interaction_id": "chat-3141",
            "agent_id": "agent-17",
        },
    ),
    "messaged_email": (
        "email",
        {
            "event_id": "mail-ev-9",
            "type": "customer.messaged",
            "ts": "2024-05-01T08:15:00-04:00",
            "interaction_id": "ticket-88",
        },
    ),
    "abandoned_call": (
        "call",
        {
            "event_id": "acd-20240501-000174",
            "type": "contact.abandoned",
            "ts": "2024-05-01T09:00:41.007Z",
            "interaction_id": "call-7781",
        },
    ),
    "transferred_call": (
        "call",
        {
            "event_id": "acd-20240501-000190",
            "type": "contact.transferred",
            "ts": "2024-05-01T09:03:00Z",
            "interaction_id": "call-7782",
            "agent_id": "agent-3",
            "to_queue": "retention",
        },
    ),
    "escalated_chat": (
        "chat",
        {
            "event_id": "chat-ev-7",
            "type": "contact.escalated",
            "ts": "2024-05-01T09:10:00Z",
            "interaction_id": "chat-3141",
            "level": 2,
        },
    ),
    "ended_call": (
        "call",
        {
            "event_id": "acd-20240501-000201",
            "type": "contact.ended",
            "ts": "2024-05-01T09:07:30.5Z",
            "interaction_id": "call-7782",
            "agent_id": "agent-3",
            "resolved": True,
            "talk_seconds": 212.5,
            "hold_seconds": 30,
            "wrap_seconds": 0,
        },
    ),
    "reopened_email": (
        "email",
        {
            "event_id": "mail-ev-12",
            "type": "contact.reopened",
            "ts": "2024-05-03T10:00:00Z",
            "interaction_id": "ticket-88",
            "channel": "email",
        },
    ),
    "survey": (
        None,
        {
            "event_id": "svy-5512",
            "type": "survey.answered",
            "ts": "2024-05-02T18:20:00+01:00",
            "interaction_id": "chat-3141",
            "channel": "chat",
            "queue": "sales",
            "csat": 4,
            "nps": 9,
            "ces": 6,
            "comment": "quick and friendly",
        },
    ),
}


def edit(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """`base` with fields changed; a change to `...` removes the field."""
    doc = {**base, **changes}
    return {name: value for name, value in doc.items() if value is not ...}


ENDED = GOOD["ended_call"][1]
ANSWERED = GOOD["survey"][1]
SOCIAL = GOOD["started_social"][1]
RESPONDED = GOOD["responded_chat"][1]
MOVED = GOOD["transferred_call"][1]
RAISED = GOOD["escalated_chat"][1]

# Realistic bad events, each with one fault: (id, event, topic channel,
# reason, words the rejection's detail must contain).
BAD_EVENTS: list[tuple[str, Any, str | None, str, str]] = [
    ("no event_id", edit(STARTED_CALL, event_id=...), "call", "missing_field", "event_id"),
    ("no type", edit(STARTED_CALL, type=...), "call", "missing_field", "type"),
    ("no ts", edit(STARTED_CALL, ts=...), "call", "missing_field", "ts"),
    ("no interaction", edit(STARTED_CALL, interaction_id=...), "call", "missing_field", "inter"),
    ("start, no customer", edit(STARTED_CALL, customer_id=...), "call", "missing_field", "cust"),
    ("start, no queue", edit(STARTED_CALL, queue=...), "call", "missing_field", "queue"),
    ("social start, no network", edit(SOCIAL, network=...), "social", "missing_field", "network"),
    ("bare social start", edit(SOCIAL, network=..., channel=...), "social", "missing_field", "net"),
    ("response, no agent", edit(RESPONDED, agent_id=...), "chat", "missing_field", "agent_id"),
    ("end, no resolved", edit(ENDED, resolved=...), "call", "missing_field", "resolved"),
    ("survey, no score", edit(ANSWERED, csat=..., nps=..., ces=...), None, "missing_field", "csat"),
    ("null scores", edit(ANSWERED, csat=None, nps=None, ces=None), None, "missing_field", "ces"),
    ("event_id number", edit(STARTED_CALL, event_id=17), "call", "wrong_type", "integer"),
    ("event_id null", edit(STARTED_CALL, event_id=None), "call", "wrong_type", "null"),
    ("start, queue null", edit(STARTED_CALL, queue=None), "call", "wrong_type", "queue"),
    ("type number", edit(STARTED_CALL, type=3), "call", "wrong_type", "type"),
    ("type list", edit(STARTED_CALL, type=["contact.started"]), "call", "wrong_type", "array"),
    ("ts float", edit(STARTED_CALL, ts=1714554000250.0), "call", "wrong_type", "number"),
    ("ts fractional ms", edit(STARTED_CALL, ts=1714554000250.5), "call", "wrong_type", "ts"),
    ("ts bool", edit(STARTED_CALL, ts=True), "call", "wrong_type", "boolean"),
    ("ts null", edit(STARTED_CALL, ts=None), "call", "wrong_type", "null"),
    ("ts object", edit(STARTED_CALL, ts={"ms": 1}), "call", "wrong_type", "object"),
    ("channel number", edit(STARTED_CALL, channel=1), "call", "wrong_type", "channel"),
    ("resolved string", edit(ENDED, resolved="true"), "call", "wrong_type", "resolved"),
    ("resolved 1", edit(ENDED, resolved=1), "call", "wrong_type", "integer"),
    ("resolved null", edit(ENDED, resolved=None), "call", "wrong_type", "null"),
    ("talk string", edit(ENDED, talk_seconds="212"), "call", "wrong_type", "talk_seconds"),
    ("hold bool", edit(ENDED, hold_seconds=False), "call", "wrong_type", "hold_seconds"),
    ("csat string", edit(ANSWERED, csat="4"), None, "wrong_type", "csat"),
    ("csat float", edit(ANSWERED, csat=4.0), None, "wrong_type", "csat"),
    ("nps bool", edit(ANSWERED, nps=True), None, "wrong_type", "nps"),
    ("level list", edit(RAISED, level=[2]), "chat", "wrong_type", "level"),
    ("level bool", edit(RAISED, level=True), "chat", "wrong_type", "level"),
    ("level float", edit(RAISED, level=2.5), "chat", "wrong_type", "level"),
    ("network number", edit(STARTED_CALL, network=5), "call", "wrong_type", "network"),
    ("reason list", edit(STARTED_CALL, reason=["a"]), "call", "wrong_type", "reason"),
    ("to_queue number", edit(MOVED, to_queue=4), "call", "wrong_type", "to_queue"),
    ("empty event_id", edit(STARTED_CALL, event_id=""), "call", "out_of_range", "event_id"),
    ("event_id 129", edit(STARTED_CALL, event_id="e" * 129), "call", "out_of_range", "129"),
    ("queue 65", edit(STARTED_CALL, queue="q" * 65), "call", "out_of_range", "1 to 64"),
    ("empty queue", edit(STARTED_CALL, queue=""), "call", "out_of_range", "queue"),
    ("survey queue 65", edit(ANSWERED, queue="q" * 65), None, "out_of_range", "queue"),
    ("empty reason", edit(STARTED_CALL, reason=""), "call", "out_of_range", "reason"),
    ("empty to_queue", edit(MOVED, to_queue=""), "call", "out_of_range", "to_queue"),
    ("empty interaction", edit(STARTED_CALL, interaction_id=""), "call", "out_of_range", "got 0"),
    ("customer 200", edit(STARTED_CALL, customer_id="c" * 200), "call", "out_of_range", "200"),
    ("empty agent", edit(RESPONDED, agent_id=""), "chat", "out_of_range", "agent_id"),
    ("empty network", edit(SOCIAL, network=""), "social", "out_of_range", "network"),
    ("priority 129", edit(STARTED_CALL, priority="p" * 129), "call", "out_of_range", "priority"),
    ("to_queue 65", edit(MOVED, to_queue="q" * 65), "call", "out_of_range", "to_queue"),
    ("level empty", edit(RAISED, level=""), "chat", "out_of_range", "level"),
    ("channel fax", edit(STARTED_CALL, channel="fax"), "call", "out_of_range", "fax"),
    ("channel upper case", edit(STARTED_CALL, channel="Call"), "call", "out_of_range", "Call"),
    ("survey channel", edit(ANSWERED, channel="sms"), None, "out_of_range", "sms"),
    ("csat 0", edit(ANSWERED, csat=0), None, "out_of_range", "csat"),
    ("csat 6", edit(ANSWERED, csat=6), None, "out_of_range", "1 to 5"),
    ("nps 11", edit(ANSWERED, nps=11), None, "out_of_range", "0 to 10"),
    ("nps -1", edit(ANSWERED, nps=-1), None, "out_of_range", "nps"),
    ("ces 8", edit(ANSWERED, ces=8), None, "out_of_range", "1 to 7"),
    ("ces 2^64-1", edit(ANSWERED, ces=2**64 - 1), None, "out_of_range", "ces"),
    ("talk negative", edit(ENDED, talk_seconds=-1), "call", "out_of_range", "talk_seconds"),
    ("wrap -0.5", edit(ENDED, wrap_seconds=-0.5), "call", "out_of_range", "wrap_seconds"),
    ("ts naive", edit(STARTED_CALL, ts="2024-05-01T09:00:00"), "call", "out_of_range", "offset"),
    ("ts no date", edit(STARTED_CALL, ts="09:00:00Z"), "call", "out_of_range", "ts"),
    ("ts 30 Feb", edit(STARTED_CALL, ts="2024-02-30T09:00:00Z"), "call", "out_of_range", "ts"),
    ("ts 1999", edit(STARTED_CALL, ts="1999-12-31T23:59:59Z"), "call", "out_of_range", "2000"),
    ("ts in seconds", edit(STARTED_CALL, ts=1_714_554_000), "call", "out_of_range", "2000"),
    ("ts 2100", edit(STARTED_CALL, ts=4_102_444_800_000), "call", "out_of_range", "2100"),
    ("ts negative", edit(STARTED_CALL, ts=-1), "call", "out_of_range", "ts"),
    ("ts uint64", edit(STARTED_CALL, ts=2**64 - 1), "call", "out_of_range", "ts"),
    ("unknown type", edit(STARTED_CALL, type="contact.deleted"), "call", "unknown_type", "del"),
    ("type case", edit(STARTED_CALL, type="Contact.Started"), "call", "unknown_type", "Contact"),
    ("start on surveys topic", STARTED_CALL, None, "unknown_type", "surveys topic"),
    ("chat on calls", edit(STARTED_CALL, channel="chat"), "call", "channel_mismatch", "chat"),
    ("social event on emails", SOCIAL, "email", "channel_mismatch", "social"),
]


# --- near-valid events ------------------------------------------------------

MIN_TS = 946_684_800_000
MAX_TS = 4_102_444_800_000


def _text(longest: int) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(good, bad) values of a string field of 1..`longest` characters."""
    good = st.one_of(
        st.text(min_size=1, max_size=longest),
        st.sampled_from(["x" * longest, "é" * longest, "客"]),
    )
    bad = st.one_of(
        st.sampled_from(["", "x" * (longest + 1), 0, 12, True, [], {}]),
        st.text(min_size=longest + 1, max_size=longest + 3),
    )
    return good, bad


def _zones() -> st.SearchStrategy[timezone]:
    return st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    )


@st.composite
def rfc3339_strings(draw: st.DrawFn, first: int = 2000, last: int = 2099) -> str:
    """Date-times with an offset whose local date lies in the years `first` to
    `last`, but not on the first or last day of 2000..2099: the schema judges
    a string's year on its local date, the decoder the UTC instant, and the
    two differ there (see test_schema)."""
    moment = draw(
        st.datetimes(datetime(first, 1, 1), datetime(last, 12, 31, 23, 59), timezones=_zones())
    )
    if (moment.year, moment.month, moment.day) in ((2000, 1, 1), (2099, 12, 31)):
        moment += timedelta(days=1 if moment.year == 2000 else -1)
    text = moment.isoformat(timespec=draw(st.sampled_from(["seconds", "milliseconds", "auto"])))
    if text.endswith("+00:00") and draw(st.booleans()):
        text = text[:-6] + "Z"
    return text.lower() if draw(st.booleans()) else text


_TS = (
    st.one_of(st.integers(MIN_TS, MAX_TS - 1), rfc3339_strings()),
    st.one_of(
        st.sampled_from([MIN_TS - 1, MAX_TS, 0, -1, 2**63, 2**64 - 1, 2**70, True, ""]),
        st.sampled_from(
            [
                "2024-05-01T12:00:00+0200",
                "2024-05-01T12:00:00+02",
                "2024-05-01 12:00:00Z",
                "2024-05-01T23:59:60Z",
                "2024-02-30T10:00:00Z",
                "2024-05-01",
            ]
        ),
        rfc3339_strings(first=1980, last=1999),
        rfc3339_strings(first=2100, last=2120),
        st.datetimes(datetime(2001, 1, 1), datetime(2098, 1, 1)).map(datetime.isoformat),
        st.integers(MIN_TS, MAX_TS).map(lambda ms: ms + 0.5),
    ),
)


def _score(low: int, high: int) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    # No integral floats: see test_schema.test_integral_floats_are_where_the_two_differ
    bad = st.one_of(
        st.sampled_from([low - 1, high + 1]),
        st.sampled_from([2**64, 2**70, str(low), True, low + 0.5, []]),
        st.integers().filter(lambda value: not low <= value <= high),
    )
    return st.integers(low, high), bad


_SECONDS = (
    st.one_of(st.floats(0, allow_infinity=False), st.integers(0, 10**7), st.just(2**70)),
    st.one_of(st.floats(max_value=-1e-3, allow_infinity=False), st.sampled_from(["30", True])),
)
_LEVEL = (
    st.one_of(st.integers(-(2**63), 2**64 - 1), _text(128)[0]),
    st.one_of(st.sampled_from([2**64, -(2**63) - 1, 2**70, 1.5, False, {}]), _text(128)[1]),
)

# name -> (good values, bad values)
FIELDS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "event_id": _text(128),
    "ts": _TS,
    "interaction_id": _text(128),
    "customer_id": _text(128),
    "channel": (st.sampled_from(CHANNELS), st.sampled_from(["fax", "", "Call", 3])),
    "queue": _text(64),
    "agent_id": _text(128),
    "network": _text(128),
    "reason": _text(128),
    "priority": _text(128),
    "resolved": (st.booleans(), st.sampled_from(["true", 1, 0])),
    "talk_seconds": _SECONDS,
    "hold_seconds": _SECONDS,
    "wrap_seconds": _SECONDS,
    "to_queue": _text(64),
    "level": _LEVEL,
    "csat": _score(1, 5),
    "nps": _score(0, 10),
    "ces": _score(1, 7),
}
_USUAL = {
    "contact.started": ("customer_id", "queue", "network"),
    "agent.responded": ("agent_id",),
    "contact.transferred": ("to_queue",),
    "contact.escalated": ("level",),
    "contact.ended": ("resolved", "talk_seconds", "hold_seconds", "wrap_seconds"),
    "survey.answered": ("csat", "nps", "ces", "queue"),
}
_EXTRAS = st.dictionaries(
    st.text(max_size=8).filter(lambda key: key not in FIELDS and key != "type"),
    st.one_of(st.none(), st.integers(), st.text(max_size=8), st.lists(st.integers())),
    max_size=2,
)


@st.composite
def near_valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """An event of a random type whose fields are each usually right: present
    when its type uses them, of the right type and range. Now and then a field
    is absent, null or bad, or one its type does not use comes along, and so
    do unknown fields."""
    kind = draw(st.sampled_from(EVENT_TYPES))
    doc: dict[str, Any] = {"type": kind}
    usual = ("event_id", "ts", "interaction_id", *_USUAL.get(kind, ()))
    for name, (good, bad) in FIELDS.items():
        roll = draw(st.integers(0, 29))
        if roll == 1:
            doc[name] = None
        elif roll == 2:
            doc[name] = draw(bad)
        elif roll > 2 and (name in usual or roll > 25):
            doc[name] = draw(good)
    roll = draw(st.integers(0, 29))
    if roll == 0:
        del doc["type"]
    elif roll == 1:
        doc["type"] = draw(st.sampled_from(["contact.deleted", "Contact.Started", "", 7, None]))
    doc.update(draw(_EXTRAS))
    return doc


def encode(value: Any) -> bytes:
    """Stdlib JSON: unlike orjson it writes integers of any size."""
    return json.dumps(value).encode()
