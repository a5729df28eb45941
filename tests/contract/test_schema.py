"""The published JSON Schema is a correct description of what the decoder does."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from streams.contract import decode_message
from streams.contract.event import CHANNELS, EVENT_TYPES
from tests.contract.support import (
    BAD_EVENTS,
    BATCH_SCHEMA,
    EVENT_SCHEMA,
    GOOD,
    LIMITS,
    SCHEMA,
    STARTED_CALL,
    TOPIC_CHANNELS,
    encode,
    near_valid_events,
    schema_accepts,
)


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_schema_names_every_type_and_channel() -> None:
    assert SCHEMA["properties"]["type"]["enum"] == list(EVENT_TYPES)
    assert SCHEMA["properties"]["channel"]["enum"] == [*CHANNELS, None]


@pytest.mark.parametrize("name", sorted(GOOD))
def test_the_good_samples_are_valid(name: str) -> None:
    topic_channel, doc = GOOD[name]
    assert schema_accepts(doc, topic_channel)
    assert EVENT_SCHEMA.is_valid(doc)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"customer_id": None}, "type"),
        ({"queue": "q" * 65}, "maxLength"),
        ({"ts": "2024-05-01T09:00:00"}, "pattern"),
        ({"ts": "2024-02-30T09:00:00Z"}, "format"),
        ({"ts": 946_684_799_999}, "minimum"),
        ({"type": "contact.deleted"}, "enum"),
        ({"channel": "social"}, "required"),  # a social start needs a network
    ],
)
def test_the_schema_rejects_a_bad_event(change: dict[str, Any], rule: str) -> None:
    errors = list(EVENT_SCHEMA.iter_errors({**STARTED_CALL, **change}))
    assert errors
    assert rule in {error.validator for error in errors} | {
        sub.validator for error in errors for sub in error.context or ()
    }


@pytest.mark.parametrize(
    ("ts", "valid"),
    [
        ("2024-05-01T12:00:00Z", True),
        ("2024-05-01t12:00:00.123456z", True),
        ("2024-05-01T14:00:00.5+02:00", True),
        ("2024-05-01T06:30:00-05:30", True),
        (946_684_800_000, True),
        (4_102_444_799_999, True),
        ("2024-05-01T12:00:00", False),
        ("2024-05-01T12:00:00+0200", False),
        ("2024-05-01 12:00:00Z", False),
        ("2016-12-31T23:59:60Z", False),
        ("2023-02-29T12:00:00Z", False),
        ("1999-06-01T12:00:00Z", False),
        ("2100-06-01T12:00:00Z", False),
        (4_102_444_800_000, False),
        (1_714_564_800_000.5, False),
        (True, False),
    ],
)
def test_the_schema_takes_the_timestamps_the_decoder_takes(ts: Any, valid: bool) -> None:
    doc = {**STARTED_CALL, "ts": ts}
    assert EVENT_SCHEMA.is_valid(doc) is valid
    assert bool(decode_message(encode(doc), "call", LIMITS).events) is valid


# JSON Schema cannot tell 4.0 from 4: see test_integral_floats_are_where_the_two_differ
_INTEGRAL_FLOATS = ("ts float", "csat float")


@pytest.mark.parametrize(
    ("doc", "topic_channel"),
    [case[1:3] for case in BAD_EVENTS if case[0] not in _INTEGRAL_FLOATS],
    ids=[case[0] for case in BAD_EVENTS if case[0] not in _INTEGRAL_FLOATS],
)
def test_the_schema_rejects_every_bad_sample(doc: Any, topic_channel: str | None) -> None:
    assert not schema_accepts(doc, topic_channel)


def test_the_batch_schema_takes_1_to_1000_valid_events() -> None:
    assert BATCH_SCHEMA.is_valid([STARTED_CALL])
    assert BATCH_SCHEMA.is_valid([STARTED_CALL] * 1000)
    assert not BATCH_SCHEMA.is_valid([])
    assert not BATCH_SCHEMA.is_valid([STARTED_CALL] * 1001)
    assert not BATCH_SCHEMA.is_valid([STARTED_CALL, {**STARTED_CALL, "ts": "noon"}])
    assert not BATCH_SCHEMA.is_valid(STARTED_CALL)


def test_integral_floats_are_where_the_two_differ() -> None:
    """JSON Schema cannot tell 4 from 4.0 (both are integers to it); the decoder
    takes a float where an integer is due as a wrong type. The near-valid
    strategy leaves integral floats out for that reason."""
    survey = {**GOOD["survey"][1], "csat": 4.0}
    assert schema_accepts(survey, None)
    assert decode_message(encode(survey), None, LIMITS).rejections[0].reason == "wrong_type"


def test_the_year_of_a_string_is_where_the_two_differ() -> None:
    """The schema checks the local year, the decoder the UTC instant."""
    doc = {**STARTED_CALL, "ts": "2000-01-01T00:30:00+01:00"}  # 1999-12-31T23:30Z
    assert schema_accepts(doc, "call")
    assert decode_message(encode(doc), "call", LIMITS).rejections[0].reason == "out_of_range"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_events(), st.sampled_from(TOPIC_CHANNELS))
@example({**STARTED_CALL, "channel": "social"}, "social")
@example({k: v for k, v in GOOD["started_social"][1].items() if k != "network"}, "social")
@example({k: v for k, v in STARTED_CALL.items() if k != "channel"}, "social")
@example(STARTED_CALL, None)
@example(GOOD["survey"][1], "chat")
def test_the_decoder_accepts_exactly_what_the_schema_accepts(
    doc: dict[str, Any], topic_channel: str | None
) -> None:
    decoded = decode_message(encode(doc), topic_channel, LIMITS)
    expected = schema_accepts(doc, topic_channel)
    assert len(decoded.events) + len(decoded.rejections) == 1
    errors = [error.message for error in EVENT_SCHEMA.iter_errors(doc)]
    assert bool(decoded.events) == expected, (decoded.rejections, errors)


@settings(max_examples=200, deadline=None)
@given(st.lists(near_valid_events(), min_size=1, max_size=8), st.sampled_from(TOPIC_CHANNELS))
def test_in_a_batch_each_element_is_judged_as_alone(
    batch: list[dict[str, Any]], topic_channel: str | None
) -> None:
    decoded = decode_message(encode(batch), topic_channel, LIMITS)
    accepted = [schema_accepts(doc, topic_channel) for doc in batch]
    assert len(decoded.events) == sum(accepted)
    assert [r.index for r in decoded.rejections] == [i for i, ok in enumerate(accepted) if not ok]
