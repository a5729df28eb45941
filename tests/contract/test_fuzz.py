"""Whatever the bytes, the decoder answers: never an exception, and every
element of the message is either an event or a rejection."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streams.contract import REASONS, Decoded, Limits, decode_message
from tests.contract.support import GOOD, LIMITS, STARTED_CALL, TOPIC_CHANNELS, encode
from tests.contract.support import near_valid_events as near_valid

SMALL = Limits(max_event_bytes=300, max_message_bytes=2000, max_batch_events=4)

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)


def _accounted(raw: bytes | None, topic_channel: str | None, limits: Limits) -> Decoded:
    """Decode, and check the result is a full account of the message."""
    decoded = decode_message(raw, topic_channel, limits)
    for rejected in decoded.rejections:
        assert rejected.reason in REASONS
        assert 0 < len(rejected.detail) <= 200
    whole = [r for r in decoded.rejections if r.index is None]
    if whole:
        # The message as a whole: one rejection and nothing else.
        assert decoded.events == []
        assert len(decoded.rejections) == 1
        return decoded
    doc = orjson.loads(raw or b"")
    if isinstance(doc, dict):
        assert len(decoded.events) == 1
        assert decoded.rejections == []
        return decoded
    assert isinstance(doc, list)
    assert 1 <= len(doc) <= limits.max_batch_events
    indexes = [r.index for r in decoded.rejections]
    assert indexes == sorted(set(indexes))
    assert all(0 <= index < len(doc) for index in indexes if index is not None)
    assert len(decoded.events) + len(decoded.rejections) == len(doc)
    return decoded


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(TOPIC_CHANNELS), st.sampled_from([LIMITS, SMALL]))
@example(b"", "call", LIMITS)
@example(b"[" * 1025 + b"]" * 1025, "call", LIMITS)
@example(b"[" * 1024 + b"]" * 1024, "call", LIMITS)
@example(b"[{}," * 300 + b"{}" + b"]" * 300, "call", LIMITS)
@example(b'[{"x":' + b"[" * 300 + b"]" * 300 + b"}]", "call", SMALL)
@example(b'{"a":' * 1100 + b"1" + b"}" * 1100, "call", LIMITS)
@example(b"[" + b"1e999," * 3 + b"1]", "call", LIMITS)
@example(b'{"ts": 1' + b"0" * 400 + b"}", "call", LIMITS)
@example(b"\xef\xbb\xbf{}", "call", LIMITS)
@example(b'"\\udc00"', "call", LIMITS)
def test_arbitrary_bytes(raw: bytes, topic_channel: str | None, limits: Limits) -> None:
    _accounted(raw, topic_channel, limits)


@settings(max_examples=500, deadline=None)
@given(json_values, st.sampled_from(TOPIC_CHANNELS), st.sampled_from([LIMITS, SMALL]))
def test_arbitrary_json(value: Any, topic_channel: str | None, limits: Limits) -> None:
    decoded = _accounted(encode(value), topic_channel, limits)
    if not isinstance(value, dict | list):
        assert decoded.rejections[0].reason == "not_an_object"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(near_valid(), json_values), max_size=6),
    st.sampled_from(TOPIC_CHANNELS),
    st.sampled_from([LIMITS, SMALL]),
)
def test_batches_of_anything(batch: list[Any], topic_channel: str | None, limits: Limits) -> None:
    _accounted(encode(batch), topic_channel, limits)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A good message with a few bytes flipped, dropped or inserted."""
    _, doc = draw(st.sampled_from(list(GOOD.values())))
    raw = bytearray(orjson.dumps(draw(st.sampled_from([doc, [doc, STARTED_CALL]]))))
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


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged(), st.sampled_from(TOPIC_CHANNELS), st.sampled_from([LIMITS, SMALL]))
def test_damaged_messages(raw: bytes, topic_channel: str | None, limits: Limits) -> None:
    _accounted(raw, topic_channel, limits)
