"""The decoder on realistic events: what it keeps, and the exact reason for
everything it rejects."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streams.contract import REASONS, Decoded, Event, Limits, Rejection, decode_message
from streams.contract.decode import _walked_size
from streams.contract.event import EVENT_TYPES
from tests.contract.support import (
    ANSWERED,
    BAD_EVENTS,
    ENDED,
    GOOD,
    LIMITS,
    RAISED,
    SOCIAL,
    STARTED_CALL,
    decode,
    edit,
    encode,
    rejection,
)

# 2024-05-01T00:00:00Z
MAY_1: int = 1_714_521_600_000
HOUR = 3_600_000

EXPECTED: dict[str, Event] = {
    "started_call": Event(
        event_id="acd-20240501-000173",
        type="contact.started",
        ts=MAY_1 + 9 * HOUR + 250,
        interaction_id="call-7781",
        channel="call",
        customer_id="cust-42",
        queue="billing",
        reason="invoice",
        priority="high",
    ),
    "started_social": Event(
        event_id="soc-9f2c",
        type="contact.started",
        ts=MAY_1 + 9 * HOUR,
        interaction_id="fb-thread-5521",
        channel="social",
        customer_id="cust-77",
        queue="social-care",
        network="facebook",
    ),
    "responded_chat": Event(
        event_id="chat-ev-2",
        type="agent.responded",
        ts=MAY_1 + 9 * HOUR + 45_000,
        interaction_id="chat-3141",
        channel="chat",
        agent_id="agent-17",
    ),
    "messaged_email": Event(
        event_id="mail-ev-9",
        type="customer.messaged",
        ts=MAY_1 + 12 * HOUR + 15 * 60_000,
        interaction_id="ticket-88",
        channel="email",
    ),
    "abandoned_call": Event(
        event_id="acd-20240501-000174",
        type="contact.abandoned",
        ts=MAY_1 + 9 * HOUR + 41_007,
        interaction_id="call-7781",
        channel="call",
    ),
    "transferred_call": Event(
        event_id="acd-20240501-000190",
        type="contact.transferred",
        ts=MAY_1 + 9 * HOUR + 180_000,
        interaction_id="call-7782",
        channel="call",
        agent_id="agent-3",
        to_queue="retention",
    ),
    "escalated_chat": Event(
        event_id="chat-ev-7",
        type="contact.escalated",
        ts=MAY_1 + 9 * HOUR + 600_000,
        interaction_id="chat-3141",
        channel="chat",
        level="2",
    ),
    "ended_call": Event(
        event_id="acd-20240501-000201",
        type="contact.ended",
        ts=MAY_1 + 9 * HOUR + 450_500,
        interaction_id="call-7782",
        channel="call",
        agent_id="agent-3",
        resolved=True,
        talk_seconds=212.5,
        hold_seconds=30,
        wrap_seconds=0,
    ),
    "reopened_email": Event(
        event_id="mail-ev-12",
        type="contact.reopened",
        ts=MAY_1 + 2 * 24 * HOUR + 10 * HOUR,
        interaction_id="ticket-88",
        channel="email",
    ),
    "survey": Event(
        event_id="svy-5512",
        type="survey.answered",
        ts=MAY_1 + 41 * HOUR + 20 * 60_000,
        interaction_id="chat-3141",
        channel="chat",
        queue="sales",
        csat=4,
        nps=9,
        ces=6,
    ),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_every_type_is_accepted_as_the_expected_event(name: str) -> None:
    topic_channel, doc = GOOD[name]
    assert decode(doc, topic_channel) == Decoded([EXPECTED[name]], [])


def test_the_samples_cover_every_type() -> None:
    assert {event.type for event in EXPECTED.values()} == set(EVENT_TYPES)


@pytest.mark.parametrize(
    ("doc", "topic_channel", "reason", "words"),
    [case[1:] for case in BAD_EVENTS],
    ids=[case[0] for case in BAD_EVENTS],
)
def test_a_bad_event_is_rejected_with_its_reason(
    doc: Any, topic_channel: str | None, reason: str, words: str
) -> None:
    rejected = rejection(doc, topic_channel)
    assert rejected.reason == reason
    assert words in rejected.detail
    assert rejected.index is None


# (id, message bytes, reason)
BAD_MESSAGES: list[tuple[str, bytes | None, str]] = [
    ("none", None, "invalid_json"),
    ("empty", b"", "invalid_json"),
    ("truncated", orjson.dumps(STARTED_CALL)[:-1], "invalid_json"),
    ("bad utf-8", orjson.dumps(STARTED_CALL).replace(b"billing", b"bill\xffing"), "invalid_json"),
    ("lone surrogate", orjson.dumps(STARTED_CALL).replace(b"billing", b"\\ud800"), "invalid_json"),
    ("NaN", orjson.dumps(ENDED).replace(b"212.5", b"NaN"), "invalid_json"),
    ("Infinity", orjson.dumps(ENDED).replace(b"212.5", b"Infinity"), "invalid_json"),
    ("1e400", orjson.dumps(ENDED).replace(b"212.5", b"1e400"), "invalid_json"),
    ("byte order mark", b"\xef\xbb\xbf" + orjson.dumps(STARTED_CALL), "invalid_json"),
    ("two objects", orjson.dumps(STARTED_CALL) * 2, "invalid_json"),
    ("nested 5000 deep", b"[" * 5000 + b"]" * 5000, "invalid_json"),
    ("object nested 2000 deep", b'{"a":' * 2000 + b"1" + b"}" * 2000, "invalid_json"),
    ("a string", b'"contact.started"', "not_an_object"),
    ("a number", b"1714554000250", "not_an_object"),
    ("null", b"null", "not_an_object"),
    ("true", b"true", "not_an_object"),
    ("empty batch", b"[]", "empty_batch"),
    ("empty batch, spaces", b" [ ] ", "empty_batch"),
    ("1001 events", orjson.dumps([STARTED_CALL] * 1001), "batch_too_large"),
    ("one event over 64 KiB", orjson.dumps({**STARTED_CALL, "notes": "n" * 65_536}), "too_large"),
    ("message over 1 MiB", orjson.dumps([{**STARTED_CALL, "n": "x" * 60_000}] * 18), "too_large"),
]


@pytest.mark.parametrize(
    ("raw", "reason"), [case[1:] for case in BAD_MESSAGES], ids=[case[0] for case in BAD_MESSAGES]
)
def test_a_bad_message_is_rejected_whole(raw: bytes | None, reason: str) -> None:
    decoded = decode_message(raw, "call", LIMITS)
    assert decoded.events == []
    assert [(r.reason, r.index) for r in decoded.rejections] == [(reason, None)]
    assert len(decoded.rejections[0].detail) <= 200


def test_every_reason_code_is_exercised() -> None:
    seen = {case[3] for case in BAD_EVENTS} | {case[2] for case in BAD_MESSAGES}
    assert seen == set(REASONS)


def test_an_event_of_exactly_the_limit_is_accepted() -> None:
    raw = orjson.dumps({**STARTED_CALL, "notes": ""})
    padded = orjson.dumps({**STARTED_CALL, "notes": "n" * (LIMITS.max_event_bytes - len(raw))})
    assert len(padded) == LIMITS.max_event_bytes
    assert len(decode_message(padded, "call", LIMITS).events) == 1
    over = padded.replace(b'"notes":"', b'"notes":"n')
    assert decode_message(over, "call", LIMITS).rejections[0].reason == "too_large"


def test_details_never_echo_huge_values() -> None:
    huge = "x" * 10_000
    for doc in (
        edit(STARTED_CALL, type=huge),
        edit(STARTED_CALL, ts=huge),
        edit(STARTED_CALL, channel=huge),
        edit(STARTED_CALL, queue=huge),
    ):
        detail = rejection(doc).detail
        assert len(detail) <= 200
        assert "x" * 41 not in detail


# --- fields: absent, null, ignored -------------------------------------------


def test_a_null_optional_field_counts_as_absent() -> None:
    doc = edit(STARTED_CALL, reason=None, priority=None, agent_id=None, channel=None)
    (event,) = decode(doc).events
    assert (event.reason, event.priority, event.agent_id) == (None, None, None)
    assert event.channel == "call"


def test_unknown_fields_are_ignored() -> None:
    doc = {**STARTED_CALL, "ivr_path": [1, 4, 2], "x-trace": {"id": "abc"}, "": None}
    assert decode(doc).events == [EXPECTED["started_call"]]


def test_the_fields_of_another_type_are_ignored_unchecked() -> None:
    doc = {**STARTED_CALL, "resolved": "maybe", "csat": 99, "talk_seconds": -4, "level": [1]}
    assert decode(doc).events == [EXPECTED["started_call"]]
    survey = {**ANSWERED, "resolved": True, "to_queue": ""}
    (event,) = decode(survey, None).events
    assert (event.resolved, event.to_queue) == (None, None)


def test_network_is_dropped_outside_social() -> None:
    doc = {**STARTED_CALL, "network": "facebook"}
    assert decode(doc).events[0].network is None
    assert decode(SOCIAL, "social").events[0].network == "facebook"


def test_a_social_start_without_a_channel_field_takes_the_topic_channel() -> None:
    doc = edit(SOCIAL, channel=..., network="whatsapp")
    (event,) = decode(doc, "social").events
    assert (event.channel, event.network) == ("social", "whatsapp")


def test_only_a_social_start_needs_a_network() -> None:
    reply = {"event_id": "s-2", "type": "agent.responded", "ts": MAY_1, "interaction_id": "fb-1"}
    (event,) = decode({**reply, "agent_id": "a-1"}, "social").events
    assert (event.channel, event.network) == ("social", None)


def test_a_survey_takes_its_own_channel_or_none() -> None:
    assert decode(ANSWERED, None).events[0].channel == "chat"
    assert decode(edit(ANSWERED, channel=...), None).events[0].channel is None
    assert decode(edit(ANSWERED, channel=None), None).events[0].channel is None


def test_a_survey_keeps_its_network_unless_its_channel_is_not_social() -> None:
    social = edit(ANSWERED, channel="social", network="twitter")
    assert decode(social, None).events[0].network == "twitter"
    unnamed = edit(ANSWERED, channel=..., network="twitter")
    assert decode(unnamed, None).events[0].network == "twitter"
    chat = edit(ANSWERED, network="twitter")
    assert decode(chat, None).events[0].network is None


def test_a_survey_on_a_channel_topic_gets_that_channel() -> None:
    (event,) = decode(edit(ANSWERED, channel=...), "email").events
    assert event.channel == "email"
    assert rejection(ANSWERED, "email").reason == "channel_mismatch"


def test_one_score_is_enough() -> None:
    (event,) = decode(edit(ANSWERED, csat=..., nps=..., ces=1), None).events
    assert (event.csat, event.nps, event.ces) == (None, None, 1)
    (event,) = decode(edit(ANSWERED, csat=None, nps=0, ces=None), None).events
    assert (event.csat, event.nps, event.ces) == (None, 0, None)


def test_score_bounds_are_inclusive() -> None:
    for csat, nps, ces in ((1, 0, 1), (5, 10, 7)):
        (event,) = decode(edit(ANSWERED, csat=csat, nps=nps, ces=ces), None).events
        assert (event.csat, event.nps, event.ces) == (csat, nps, ces)


def test_level_is_kept_as_text() -> None:
    assert decode(edit(RAISED, level="tier-2"), "chat").events[0].level == "tier-2"
    assert decode(edit(RAISED, level=-1), "chat").events[0].level == "-1"
    assert decode(edit(RAISED, level=2**64 - 1), "chat").events[0].level == str(2**64 - 1)
    assert decode(edit(RAISED, level=...), "chat").events[0].level is None


def test_handle_times_keep_their_numbers() -> None:
    doc = edit(ENDED, talk_seconds=0.0, hold_seconds=None, wrap_seconds=...)
    (event,) = decode(doc).events
    assert (event.talk_seconds, event.hold_seconds, event.wrap_seconds) == (0.0, None, None)
    (event,) = decode(edit(ENDED, resolved=False, talk_seconds=...)).events
    assert (event.resolved, event.talk_seconds, event.hold_seconds) == (False, None, 30)


def test_an_integer_beyond_64_bits_is_a_rejection_not_an_exception() -> None:
    raw = orjson.dumps(ANSWERED).replace(b'"csat":4', b'"csat":' + b"9" * 40)
    assert decode_message(raw, None, LIMITS).rejections[0].reason == "wrong_type"
    raw = orjson.dumps(ENDED).replace(b"212.5", b"9" * 40)
    assert decode_message(raw, "call", LIMITS).events[0].talk_seconds == pytest.approx(1e40)


def test_ids_and_lengths_count_characters_not_bytes() -> None:
    doc = edit(STARTED_CALL, queue="ü" * 64, customer_id="客" * 128)
    (event,) = decode(doc).events
    assert (len(event.queue or ""), len(event.customer_id or "")) == (64, 128)


# --- batches -----------------------------------------------------------------


def test_a_batch_keeps_the_good_elements_and_reports_the_bad_by_index() -> None:
    batch = [
        STARTED_CALL,
        "not an event",
        edit(ENDED, resolved=...),
        GOOD["abandoned_call"][1],
        [STARTED_CALL],
        edit(STARTED_CALL, channel="email"),
        GOOD["transferred_call"][1],
    ]
    decoded = decode(batch, "call")
    assert decoded.events == [
        EXPECTED["started_call"],
        EXPECTED["abandoned_call"],
        EXPECTED["transferred_call"],
    ]
    assert [(r.index, r.reason) for r in decoded.rejections] == [
        (1, "not_an_object"),
        (2, "missing_field"),
        (4, "not_an_object"),
        (5, "channel_mismatch"),
    ]


def test_a_batch_of_one_equals_the_single_event() -> None:
    for name, (topic_channel, doc) in GOOD.items():
        assert decode([doc], topic_channel).events == [EXPECTED[name]]


def test_a_batch_of_the_limit_is_accepted() -> None:
    decoded = decode([STARTED_CALL] * 1000)
    assert (len(decoded.events), decoded.rejections) == (1000, [])


def test_a_batch_element_over_the_event_limit_is_rejected_on_its_own() -> None:
    limits = Limits(max_event_bytes=1024, max_message_bytes=16 * 1024, max_batch_events=10)
    big = {**STARTED_CALL, "transcript": "t" * 2000}
    decoded = decode([STARTED_CALL, big, GOOD["abandoned_call"][1]], "call", limits)
    assert decoded.events == [EXPECTED["started_call"], EXPECTED["abandoned_call"]]
    (too_large,) = decoded.rejections
    assert (too_large.reason, too_large.index) == ("too_large", 1)
    assert str(len(orjson.dumps(big))) in too_large.detail


def test_batch_elements_are_measured_re_encoded() -> None:
    limits = Limits(max_event_bytes=1024, max_message_bytes=64 * 1024, max_batch_events=10)
    # Whitespace in the message does not count against an element.
    spaced = orjson.dumps([STARTED_CALL], option=orjson.OPT_INDENT_2).replace(b"  ", b" " * 300)
    assert len(spaced) > 2048
    assert decode_message(spaced, "call", limits).events == [EXPECTED["started_call"]]


def test_a_deep_batch_element_is_measured_too() -> None:
    """orjson encodes no more than 254 levels: the element is walked instead."""
    limits = Limits(max_event_bytes=2048, max_message_bytes=64 * 1024, max_batch_events=10)
    deep: Any = "leaf"
    for _ in range(400):
        deep = [deep]
    small = {**STARTED_CALL, "path": deep}
    large = {**STARTED_CALL, "path": deep, "notes": "n" * 3000}
    decoded = decode_message(encode([STARTED_CALL, small, large]), "call", limits)
    assert decoded.events == [EXPECTED["started_call"]] * 2
    assert [(r.index, r.reason) for r in decoded.rejections] == [(2, "too_large")]


@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        {"a": [1, 22, {"b": None, "c": True, "d": False}], "e": "text", "ü": "ß客"},
        [[[]], {}, -17, 3, "", {"k": [None]}],
    ],
)
def test_the_walked_size_is_the_compact_size(value: Any) -> None:
    assert _walked_size(value) == len(orjson.dumps(value))


def test_batch_limits_are_configurable() -> None:
    limits = Limits(max_event_bytes=4096, max_message_bytes=4096, max_batch_events=2)
    assert decode([STARTED_CALL] * 2, "call", limits).rejections == []
    assert decode([STARTED_CALL] * 3, "call", limits).rejections == [
        Rejection("batch_too_large", "3 events in one batch, limit 2", None)
    ]
    too_big = orjson.dumps([STARTED_CALL] * 30)
    assert len(too_big) > 4096
    assert decode_message(too_big, "call", limits).rejections[0].reason == "too_large"
