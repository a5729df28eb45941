"""Bad input for the fuzz tests, by category, and the property every message
must satisfy at the ingest stage: no exception, and a full account (each event
goes on or is counted late; each rejection is exactly one dead letter with a
reason, a detail and its source).

Shared by the hypothesis tests (test_fuzz.py), the atheris target
(fuzz_decode.py) and the end-to-end test on real Kafka
(tests/integration/test_bad_input.py).
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from streams.config import Settings
from streams.contract import REASONS, decode_message
from streams.contract.event import EVENT_TYPES
from streams.pipeline.stages import Ingest, Outbox, Stats
from streams.pipeline.wire import event_to_wire
from tests.contract.support import FIELDS, GOOD, MAX_TS, MIN_TS, encode, near_valid_events

Message = tuple[str, int, int, bytes | None]


def _scale() -> float:
    text = os.environ.get("CC_FUZZ_SCALE", "1")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise ValueError(f"CC_FUZZ_SCALE must be a number above 0, got {text!r}")
    return value


SCALE = _scale()
"""Multiplies every fuzz case count: `CC_FUZZ_SCALE=10` runs ten times as many."""

SHARD = 1000
"""Cases per hypothesis run: a run slows down as it grows (it remembers every
case it tried), so a long fuzz is many short runs, each with its own seed."""


def cases(count: int, derandomize: bool = True) -> settings:
    """Hypothesis settings for `count` cases: derandomized (or seeded by the
    caller), so CI runs the same cases every time, and no example database."""
    return settings(
        max_examples=count,
        deadline=None,
        derandomize=derandomize,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


def shards(name: str, count: int) -> list[int]:
    """The seeds of the runs of SHARD cases that make up `count` cases times
    CC_FUZZ_SCALE, fixed by `name`."""
    runs = max(1, math.ceil(count * SCALE / SHARD))
    return [zlib.crc32(f"{name}/{run}".encode()) for run in range(runs)]


# --- the ingest stage under test --------------------------------------------

WALL = 1_714_554_300_000  # 2024-05-01T09:05:00Z, just after the sample events
# The default limits on the wall clock (old events are late), and small limits
# on the event clock (nothing is late before the first event).
SETTINGS = (
    Settings(),
    replace(
        Settings(), clock="event", max_event_bytes=300, max_message_bytes=2000, max_batch_events=4
    ),
)
TOPIC_OF: dict[str | None, str] = {
    channel: topic for topic, channel in Settings().topics.inputs().items()
}
INPUT_TOPICS = tuple(TOPIC_OF.values())
HEADER_NAMES = ("reason", "detail", "source_topic", "source_partition", "source_offset")


def check_ingest(config: Settings, messages: Sequence[Message], wall_ms: int = WALL) -> Outbox:
    """Run one poll's messages through `Ingest.process` and check the account of
    every message against what the decoder made of it."""
    stats = Stats()
    ingest = Ingest(config, stats)
    out = Outbox()
    ingest.process(messages, wall_ms, out)

    clock = wall_ms if config.clock == "wall" else None
    too_old = None if clock is None else clock - config.lateness_ms
    expected_events: list[Any] = []
    expected_late: Counter[str] = Counter()
    expected_dead: list[tuple[str, int, int, int | None, str]] = []
    for topic, partition, offset, raw in messages:
        decoded = decode_message(raw, ingest.channels[topic], ingest.limits)
        _check_units(raw, decoded.events, decoded.rejections, ingest)
        for event in decoded.events:
            if too_old is not None and event.ts < too_old:
                expected_late[topic] += 1
            else:
                expected_events.append(event)
        for rejection in decoded.rejections:
            expected_dead.append((topic, partition, offset, rejection.index, rejection.reason))

    sent = [item for items in out.interactions.values() for item in items]
    assert len(sent) == len(expected_events)
    assert sorted(orjson.dumps(item) for item in sent) == sorted(
        orjson.dumps(event_to_wire(event)) for event in expected_events
    )
    assert stats.late == expected_late
    assert stats.events.total() == len(expected_events)

    assert [(d.topic, d.partition, d.offset, d.index, d.reason) for d in out.deadletters] == (
        expected_dead
    )
    assert stats.deadletters == Counter((d.topic, d.reason) for d in out.deadletters)
    raws = {(topic, partition, offset): raw for topic, partition, offset, raw in messages}
    for dead in out.deadletters:
        _check_dead_letter(dead, raws[(dead.topic, dead.partition, dead.offset)])
    return out


def _check_units(
    raw: bytes | None, events: list[Any], rejections: list[Any], ingest: Ingest
) -> None:
    """A message is one unit (an event or one whole-message rejection), or a
    batch whose every element is exactly one event or one rejection."""
    whole = [r for r in rejections if r.index is None]
    if whole:
        assert events == [] and len(rejections) == 1
        return
    doc = orjson.loads(raw or b"")
    if type(doc) is dict:
        assert len(events) == 1 and rejections == []
        return
    assert type(doc) is list and 1 <= len(doc) <= ingest.limits.max_batch_events
    indexes = [r.index for r in rejections]
    assert indexes == sorted(set(indexes))
    assert all(0 <= index < len(doc) for index in indexes)
    assert len(events) + len(rejections) == len(doc)


def _check_dead_letter(dead: Any, raw: bytes | None) -> None:
    """What `cc.deadletter` gets: a known reason, a short detail, headers that
    encode, and the message verbatim or the bad batch element alone."""
    assert dead.reason in REASONS
    assert 0 < len(dead.detail) <= 200
    for value in (dead.reason, dead.detail, dead.topic, str(dead.partition), str(dead.offset)):
        value.encode()  # a header value: must be valid UTF-8
    assert type(dead.raw) is bytes
    if dead.index is None:
        assert dead.raw == (raw or b"")
    else:
        assert orjson.loads(dead.raw) == orjson.loads(raw or b"")[dead.index]


# --- building bad messages ----------------------------------------------------

GOOD_ON_TOPIC = [(TOPIC_OF[channel], doc) for channel, doc in GOOD.values()]
GOOD_DOCS = [doc for _, doc in GOOD_ON_TOPIC]
FIELD_NAMES = ("type", *FIELDS, "comment", "extra")
_MARK = "\x00fuzz\x00"
_MARKED = json.dumps(_MARK).encode()


def splice(doc: dict[str, Any], name: str, literal: bytes) -> bytes:
    """`doc` as JSON with field `name` set to `literal`, raw bytes that need
    not be valid JSON (NaN, invalid UTF-8, nesting no encoder writes, ...)."""
    return encode({**doc, name: _MARK}).replace(_MARKED, literal)


def array(elements: Sequence[bytes]) -> bytes:
    return b"[" + b",".join(elements) + b"]"


good_docs = st.sampled_from(GOOD_DOCS)
field_names = st.sampled_from(FIELD_NAMES)


def _placed(literals: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """A literal as a field of a good event, as a batch element next to a good
    event, or as the whole message."""
    in_event = st.builds(splice, good_docs, field_names, literals)
    return st.one_of(
        in_event,
        st.builds(lambda event, good: array([event, encode(good)]), in_event, good_docs),
        literals,
    )


# 1. random bytes, and soups of JSON tokens (they get further into the parser)
_TOKENS = [
    b"{", b"}", b"[", b"]", b":", b",", b'"', b"\\", b" ", b"0", b"-1", b"1e5", b"null",
    b"true", b'"ts"', b'"type"', b'"event_id"', b'"x"', b'"contact.started"', b"\xff", b"\xc3",
]  # fmt: skip
random_bytes = st.one_of(
    st.binary(max_size=600),
    st.lists(st.sampled_from(_TOKENS), max_size=80).map(b"".join),
)


# 2. a good message (an event or a batch, compact or indented) cut short
@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    doc = draw(good_docs)
    value: Any = draw(st.sampled_from([doc, [doc], [doc, *draw(st.lists(good_docs, max_size=3))]]))
    raw = encode(value) if draw(st.booleans()) else json.dumps(value, indent=2).encode()
    return raw[: draw(st.integers(0, len(raw) - 1))]


# 3. deep nesting of arrays and objects, around orjson's limits (it encodes
# 254 levels and decodes 1024)
_DEPTHS = st.one_of(
    st.integers(1, 1100), st.sampled_from([253, 254, 255, 256, 1022, 1023, 1024, 1025])
)


_LEVELS = {
    "arrays": (b"[",),
    "objects": (b'{"a":',),
    "alternating": (b"[", b'{"a":'),
    "object, arrays": (b'{"a":', b"[", b"["),
}


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    """Arrays and objects `depth` levels deep (a few draws, whatever the depth)."""
    depth = draw(_DEPTHS)
    pattern = _LEVELS[draw(st.sampled_from(list(_LEVELS)))]
    opens = b"".join(pattern[level % len(pattern)] for level in range(depth))
    closes = opens.replace(b'{"a":', b"}")[::-1]
    return opens + draw(st.sampled_from([b"1", b"[]", b"{}", b'"x"'])) + closes


deep = st.one_of(
    _placed(nested()),
    # deep inside an element that is bad in some other way too
    st.builds(
        lambda literal, good: array([encode(good), splice({"event_id": 1}, "x", literal)]),
        nested(),
        good_docs,
    ),
)


# 4. huge strings and numbers
@st.composite
def huge_string(draw: st.DrawFn) -> bytes:
    char = draw(st.sampled_from(["x", "é", "客", "😀", '"', "\\", "\n"]))
    length = draw(
        st.one_of(st.sampled_from([64, 65, 128, 129, 65_536, 70_000]), st.integers(0, 3000))
    )
    return encode(char * length)


@st.composite
def huge_number(draw: st.DrawFn) -> bytes:
    digits = b"1" + b"0" * draw(st.integers(0, 400))
    sign = draw(st.sampled_from([b"", b"-"]))
    tail = draw(st.sampled_from([b"", b".5", b"e10", b"e308", b"e-400", b"E+2", b".0"]))
    return sign + digits + tail


huge = st.one_of(
    _placed(huge_string()),
    _placed(huge_number()),
    _placed(st.sampled_from([b"1.7976931348623157e308", b"5e-324", b"-0.0", b"-0", b"0e0"])),
    # a huge key: field names count toward the event's size too
    st.builds(
        lambda key, good: encode({**good, key: 1}),
        st.sampled_from(["k" * 129, "é" * 3000, "k" * 70_000]),
        good_docs,
    ),
)


# 5. NaN and Infinity, which JSON does not have
_NON_FINITE = [
    b"NaN", b"-NaN", b"nan", b"Infinity", b"-Infinity", b"+Infinity", b"inf", b"1e999",
    b"-1e999", b"1E400",
]  # fmt: skip
non_finite = _placed(st.sampled_from(_NON_FINITE))


# 6. a field (or the whole event) of each wrong JSON type
def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ),
    _containers,
    max_leaves=8,
)
wrong_types = st.one_of(
    st.builds(
        lambda doc, name, value: encode({**doc, name: value}), good_docs, field_names, json_values
    ),
    json_values.map(encode),
)


# 7. unknown event types: near misses of the real ones and anything else
_near_miss = st.sampled_from(EVENT_TYPES).flatmap(
    lambda kind: st.sampled_from(
        [kind.upper(), kind.title(), f" {kind}", f"{kind} ", kind + "\x00", kind.replace(".", "_"),
         kind.replace("o", "\u043e"), kind[:-1], kind + "s", f"v1.{kind}"]
    )
)  # fmt: skip
unknown_types = st.builds(
    lambda doc, kind: encode({**doc, "type": kind}),
    good_docs,
    st.one_of(_near_miss, st.text(max_size=40), st.sampled_from(["", "contact.deleted", "*"])),
)


# 8. timestamps far in the past or future, and malformed
def _zone(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


_any_date_time = st.builds(
    lambda moment, fmt: moment.isoformat(timespec=fmt),
    st.datetimes(
        datetime(1, 1, 1), datetime(9999, 12, 31), timezones=st.integers(-1439, 1439).map(_zone)
    ),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
)


@st.composite
def _mangled_date_time(draw: st.DrawFn) -> str:
    text = draw(_any_date_time)
    at = draw(st.integers(0, len(text) - 1))
    return (
        text[:at]
        + draw(st.sampled_from(["", "0", "9", "T", " ", "Z", ":", "-", "+", "٣", ".5"]))
        + text[at + 1 :]
    )


_ts_values = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.integers(MIN_TS - 10**6, MIN_TS + 10**6),
    st.integers(MAX_TS - 10**6, MAX_TS + 10**6),
    st.sampled_from([0, -1, 2**63 - 1, 2**63, 2**64, 10**30, MIN_TS, MAX_TS, 1_714_554_000]),
    _any_date_time,
    _mangled_date_time(),
    st.sampled_from(
        ["0000-00-00T00:00:00Z", "9999-12-31T23:59:59+23:59", "2024-05-01T24:00:00Z",
         "2024-06-30T23:59:60Z", "2024-05-01T09:00:00.123456789123456789Z",
         "2024-05-01T09:00:00z", "2099-12-31T23:59:59.999-00:01", "1999-12-31T23:59:59.999-00:01",
         "+002024-05-01T09:00:00Z",
         "2024-W18-3T09:00:00Z", "1714554000000", "now", ""]
    ),
    st.text(max_size=40),
)  # fmt: skip
timestamps = st.builds(lambda doc, ts: encode({**doc, "ts": ts}), good_docs, _ts_values)


# 9. invalid UTF-8 and lone surrogates inside otherwise valid events
_BAD_TEXT = [
    b"\xff", b"\xfe", b"\xc0\x80", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\x00", b"\x1f",
    b"\\ud800", b"\\udc00", b"\\ud800\\u0041", b"\\ud83d", b"\\udfff\\ud800", b"\\ud83d\\ude00",
    b"\\u0000", b"\\x41", b"\\", b"\\uZZZZ",
]  # fmt: skip
_string_with = st.builds(
    lambda before, bad, after: b'"' + before + bad + after + b'"',
    st.sampled_from([b"", b"call-", "é".encode()]),
    st.sampled_from(_BAD_TEXT),
    st.sampled_from([b"", b"-1", "客".encode()]),
)
bad_utf8 = st.one_of(
    _placed(_string_with),
    st.builds(
        lambda doc, bad: bad + encode(doc),
        good_docs,
        st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe"]),
    ),
    st.builds(
        lambda doc, codec: json.dumps(doc, ensure_ascii=False).encode(codec),
        good_docs,
        st.sampled_from(["utf-16", "utf-32", "latin-1"]),
    ),
)


# 10. batches mixing good and bad elements
_elements = st.one_of(
    good_docs.map(encode),
    near_valid_events().map(encode),
    json_values.map(encode),
    st.builds(splice, good_docs, field_names, st.one_of(nested(), huge_number(), _string_with)),
    st.builds(lambda doc, ts: encode({**doc, "ts": ts}), good_docs, _ts_values),
)
mixed_batches = st.lists(_elements, max_size=6).map(array)


# 11. good messages with a few bytes flipped, dropped or inserted
@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    doc = draw(good_docs)
    raw = bytearray(encode(draw(st.sampled_from([doc, [doc, GOOD_DOCS[0]]]))))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw) - 1))
        edit = draw(st.sampled_from(["flip", "drop", "insert"]))
        if edit == "flip":
            raw[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "drop":
            del raw[at]
        else:
            raw.insert(at, draw(st.integers(0, 255)))
    return bytes(raw)


CATEGORIES: dict[str, st.SearchStrategy[bytes]] = {
    "random_bytes": random_bytes,
    "truncated": truncated(),
    "deep": deep,
    "huge": huge,
    "non_finite": non_finite,
    "wrong_types": wrong_types,
    "unknown_types": unknown_types,
    "timestamps": timestamps,
    "bad_utf8": bad_utf8,
    "mixed_batches": mixed_batches,
    "damaged": damaged(),
}


def polls(values: st.SearchStrategy[bytes], most: int = 1) -> st.SearchStrategy[list[Message]]:
    """Up to `most` messages from `values` on random input topics, as one poll."""
    message = st.tuples(st.sampled_from(INPUT_TOPICS), values)
    return st.lists(message, min_size=1, max_size=most).map(
        lambda items: [
            (topic, offset % 4, offset, raw) for offset, (topic, raw) in enumerate(items)
        ]
    )
