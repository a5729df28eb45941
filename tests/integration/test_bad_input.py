"""Bad input end to end on real Kafka: one message of each fuzz category
(tests/contract/fuzzing.py) among good events, through a real worker. Every
bad message or batch element is in cc.deadletter with its reason and source,
the counters agree, the good events still count, and the worker stays up."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from tests.contract.fuzzing import splice
from tests.integration.pipeline_runner import wait_for

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def started(number: int, **changes: Any) -> dict[str, Any]:
    event = {
        "event_id": f"g{number}",
        "type": "contact.started",
        "ts": T0 + number * 1000,
        "interaction_id": f"i{number}",
        "customer_id": f"c{number}",
        "queue": "billing",
    }
    return {**event, **changes}


SURVEY = {
    "event_id": "s1",
    "type": "survey.answered",
    "ts": T0,
    "interaction_id": "i1",
    "channel": "call",
    "queue": "billing",
    "csat": 4,
}
DEEP = b"[" * 300 + b"]" * 300
DEEP_ELEMENT = b'{"event_id":1,"x":' + DEEP + b"}"

TRUNCATED = orjson.dumps(started(90))[:41]
TOO_DEEP = b"[" * 1100 + b"]" * 1100
Letter = tuple[str, int | None, Any]


def whole(reason: str) -> list[Letter]:
    """The message is dead-lettered as a whole, verbatim."""
    return [(reason, None, ...)]


# (logical topic, message value, its dead letters: [(reason, batch index,
# value, ... for the message verbatim)]): one message of each fuzz category.
BAD: list[tuple[str, bytes | None, list[Letter]]] = [
    # random bytes, an empty message, truncated JSON, too deep
    ("calls", b"\x8f\x00\xff{garbage", whole("invalid_json")),
    ("calls", None, whole("invalid_json")),
    ("calls", TRUNCATED, whole("invalid_json")),
    ("calls", TOO_DEEP, whole("invalid_json")),
    # a batch element nested deeper than orjson re-encodes: dead-lettered alone
    ("calls", b"[" + orjson.dumps(started(91)) + b"," + DEEP_ELEMENT + b"]", [
        ("wrong_type", 1, DEEP_ELEMENT)
    ]),
    # huge strings and numbers
    ("calls", orjson.dumps(started(92, event_id="x" * 70_000)), whole("too_large")),
    ("calls", splice(started(93), "ts", b"1" + b"0" * 400), whole("invalid_json")),
    ("calls", splice(started(94), "ts", b"18446744073709551616"), whole("wrong_type")),
    # NaN and infinity
    ("calls", splice(started(95), "ts", b"NaN"), whole("invalid_json")),
    ("calls", splice(started(96), "ts", b"-Infinity"), whole("invalid_json")),
    # wrong types, unknown type
    ("calls", splice(started(97), "queue", b"null"), whole("wrong_type")),
    ("surveys", orjson.dumps({**SURVEY, "csat": "4"}), whole("wrong_type")),
    ("calls", orjson.dumps(started(98, type="contact.deleted")), whole("unknown_type")),
    # timestamps: far past, far future, malformed
    ("calls", orjson.dumps(started(99, ts="1999-12-31T23:59:59Z")), whole("out_of_range")),
    ("calls", orjson.dumps(started(100, ts=4_102_444_800_000)), whole("out_of_range")),
    ("calls", orjson.dumps(started(101, ts="yesterday")), whole("out_of_range")),
    # invalid UTF-8, a lone surrogate
    ("calls", splice(started(102), "queue", b'"\xff\xfe"'), whole("invalid_json")),
    ("calls", splice(started(103), "queue", b'"\\ud800"'), whole("invalid_json")),
    # the rest of the reasons, and a batch mixing good and bad
    ("chats", orjson.dumps(started(104, channel="call")), whole("channel_mismatch")),
    ("calls", b"[]", whole("empty_batch")),
    ("calls", b'"an event"', whole("not_an_object")),
    ("calls", orjson.dumps([started(105)] * 1001), whole("batch_too_large")),
    ("calls", orjson.dumps([started(106), {"type": "contact.started"}, 7, started(107)]), [
        ("missing_field", 1, b'{"type":"contact.started"}'),
        ("not_an_object", 2, b"7"),
    ]),
]  # fmt: skip
GOOD = [
    ("calls", orjson.dumps(started(1))),
    ("calls", orjson.dumps([started(2), started(3)])),
    ("surveys", orjson.dumps(SURVEY)),
]
# Good events: those of GOOD, and the good elements of the batches in BAD.
GOOD_EVENTS = 4 + 1 + 2


def test_every_kind_of_bad_input_is_dead_lettered_and_the_worker_keeps_going(deployment):
    expected = Counter()
    for topic, value, letters in BAD:
        for reason, index, dead in letters:
            verbatim = (value or b"") if dead is ... else dead
            expected[(deployment.topics[topic], reason, index, verbatim)] += 1
    worker = deployment.start_worker()
    # Keyed: Kafka takes a null value (a tombstone) only with a key.
    deployment.produce([(topic, b"k%d" % i, value) for i, (topic, value, _) in enumerate(BAD)])
    deployment.produce([(topic, None, value) for topic, value in GOOD])

    count = expected.total()
    dead = wait_for(
        lambda: (lambda m: m if len(m) >= count else None)(deployment.read_topic("deadletter")),
        90,
        f"{count} dead letters",
        log=worker.log,
    )
    found = Counter()
    for message in dead:
        headers = {name: value.decode() for name, value in message.headers}
        assert int(headers["source_partition"]) in range(4)
        assert int(headers["source_offset"]) >= 0
        assert headers["detail"]
        index = int(headers["batch_index"]) if "batch_index" in headers else None
        key = (headers["source_topic"], headers["reason"], index, message.value or b"")
        found[key] += 1
    assert found == expected

    def counted() -> bool:
        samples = worker.samples()
        letters = Counter()
        for (name, labels), value in samples.items():
            if name == "cc_deadletter_total":
                label = dict(labels)
                letters[(label["topic"], label["reason"])] += int(value)
        events = sum(v for (n, _), v in samples.items() if n == "cc_events_total")
        by_reason = Counter()
        for (topic, reason, _, _), n in expected.items():
            by_reason[(topic, reason)] += n
        return letters == by_reason and events == GOOD_EVENTS

    wait_for(counted, 60, "dead letters and good events counted", log=worker.log)
    assert worker.process is not None and worker.process.poll() is None
    records = wait_for(
        lambda: deployment.redis_records().get("call|billing|-|24h"),
        60,
        "a record for the good events",
        log=worker.log,
    )
    assert records["counts"]["started"] == 6
