"""Messages as the contract wants them: RFC 3339 times, keyed by customer, batches."""

import orjson
import pytest

from streams.contract.decode import Limits, decode_message
from streams.simulator.wire import Message, batched, encode, rfc3339

EVENT = {
    "event_id": "e1",
    "type": "contact.started",
    "ts": 1_795_392_061_007,
    "interaction_id": "i1",
    "channel": "chat",
    "customer_id": "c1",
    "queue": "support",
}


def test_rfc3339_is_utc_with_milliseconds():
    assert rfc3339(1_795_392_061_007) == "2026-11-23T00:01:01.007Z"
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1_795_392_119_999) == "2026-11-23T00:01:59.999Z"


def test_an_event_goes_to_its_channel_keyed_by_its_customer():
    message = encode(EVENT)
    assert (message.at, message.channel, message.key) == (EVENT["ts"], "chat", b"c1")
    assert orjson.loads(message.value) == {**EVENT, "ts": "2026-11-23T00:01:01.007Z"}
    decoded = decode_message(message.value, message.channel, Limits())
    assert decoded.events[0].ts == EVENT["ts"]


def test_a_survey_goes_to_the_surveys_topic_whatever_channel_it_names():
    survey = {**EVENT, "type": "survey.answered", "csat": 4}
    assert encode(survey).channel is None


def message(at, channel="call", size=10, alone=False):
    return Message(at, channel, b"k", b'{"n":' + str(at).encode().rjust(size) + b"}", alone=alone)


def test_batches_group_one_topic_up_to_the_size():
    messages = [message(t) for t in range(7)]
    out = list(batched(messages, size=3, max_bytes=1 << 20, linger_ms=10_000))
    assert [m.events for m in out] == [3, 3, 1]
    assert [m.key for m in out] == [None, None, b"k"]  # batches are unkeyed, a single keeps its key
    assert orjson.loads(out[0].value) == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert out[0].at == 2  # sent when its last event is due


def test_batches_keep_topics_apart_and_respect_bytes_and_linger():
    messages = [message(t, "call" if t % 2 else "chat") for t in range(6)]
    out = list(batched(messages, size=100, max_bytes=1 << 20, linger_ms=10_000))
    assert sorted((m.channel, m.events) for m in out) == [("call", 3), ("chat", 3)]

    one = len(message(0).value)
    out = list(
        batched([message(t) for t in range(5)], 100, max_bytes=2 * one + 3, linger_ms=10_000)
    )
    assert [m.events for m in out] == [2, 2, 1]
    assert all(len(m.value) <= 2 * one + 3 for m in out)

    out = list(batched([message(t * 400) for t in range(6)], 100, 1 << 20, linger_ms=1000))
    assert [m.events for m in out] == [3, 3]


def test_malformed_messages_are_never_batched_and_batches_decode_as_their_events():
    messages = [encode({**EVENT, "event_id": f"e{n}", "ts": EVENT["ts"] + n}) for n in range(4)]
    spoiled = message(EVENT["ts"] + 2, "chat", alone=True)
    stream = [*messages[:2], spoiled, *messages[2:]]
    out = list(batched(stream, size=10, max_bytes=1 << 20, linger_ms=10_000))
    assert spoiled in out
    batch = next(m for m in out if m.events == 4)
    decoded = decode_message(batch.value, "chat", Limits())
    assert [e.event_id for e in decoded.events] == ["e0", "e1", "e2", "e3"]
    assert decoded.rejections == []


@pytest.mark.parametrize("size", [1, 2, 1000])
def test_batching_loses_and_duplicates_nothing(size):
    messages = [message(t, ("call", "chat", None)[t % 3]) for t in range(50)]
    out = list(batched(messages, size=size, max_bytes=1 << 20, linger_ms=5))
    assert sum(m.events for m in out) == 50
    values = []
    for m in out:
        doc = orjson.loads(m.value)
        values.extend(doc if isinstance(doc, list) else [doc])
    assert sorted(v["n"] for v in values) == list(range(50))
