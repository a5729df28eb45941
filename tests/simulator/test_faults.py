"""Delivery faults: the shares asked for, bounded disorder, late beyond the lateness,
malformed messages the contract rejects, and the traffic itself unchanged."""

import itertools
from collections import Counter

import orjson

from streams.contract.decode import Limits, decode_message
from streams.simulator.faults import Faults, inject
from streams.simulator.model import Simulation
from streams.simulator.scenario import load
from streams.simulator.wire import encode


def messages():
    events = Simulation(load("normal-day"), 3).events()
    return [encode(e) for e in events]


def test_no_faults_changes_nothing():
    clean = messages()
    assert list(inject(clean, Faults(), seed=1)) == clean


def test_duplicates_repeat_a_share_of_messages_soon_after():
    clean = messages()
    out = list(inject(clean, Faults(duplicates=0.05), seed=1))
    counts = Counter(m.value for m in out)
    assert set(counts.values()) == {1, 2}
    share = (len(out) - len(clean)) / len(clean)
    assert abs(share - 0.05) < 0.01
    assert set(counts) == {m.value for m in clean}


def test_disorder_is_bounded_and_late_events_are_late():
    clean = messages()
    faults = Faults(disorder=0.1, disorder_ms=120_000, late=0.01, late_ms=900_000)
    out = list(inject(clean, faults, seed=1))
    assert sorted(m.value for m in out) == sorted(m.value for m in clean)
    event_time = {m.value: m.at for m in clean}
    delays = [m.at - event_time[m.value] for m in out]
    assert [m.at for m in out] == sorted(m.at for m in out)  # delivered in delivery order
    late = [d for d in delays if d >= 900_000]
    disordered = [d for d in delays if 0 < d < 900_000]
    assert abs(len(late) / len(clean) - 0.01) < 0.004
    assert abs(len(disordered) / len(clean) - 0.1) < 0.015
    assert max(disordered) <= 120_000
    # an event overtaken by a later one really arrives out of event-time order
    arrived = [event_time[m.value] for m in out]
    assert sum(b < a for a, b in itertools.pairwise(arrived)) > len(clean) * 0.05


def test_malformed_messages_are_extra_and_rejected_for_every_reason():
    clean = messages()
    out = list(inject(clean, Faults(malformed=0.02), seed=1))
    spoiled = [m for m in out if m.alone]
    assert len(out) == len(clean) + len(spoiled)
    assert abs(len(spoiled) / len(clean) - 0.02) < 0.006
    reasons = Counter()
    for m in spoiled:
        decoded = decode_message(m.value, m.channel, Limits())
        assert decoded.events == []
        reasons[decoded.rejections[0].reason] += 1
    assert set(reasons) == {
        "invalid_json",
        "missing_field",
        "wrong_type",
        "out_of_range",
        "unknown_type",
        "not_an_object",
    }


def test_faults_are_seeded_and_leave_the_traffic_alone():
    clean = messages()
    faults = Faults(duplicates=0.02, disorder=0.05, late=0.01, malformed=0.01)
    a = list(inject(clean, faults, seed=5))
    assert a == list(inject(clean, faults, seed=5))
    assert a != list(inject(clean, faults, seed=6))
    valid = {m.value for m in a if not m.alone}
    assert valid == {m.value for m in clean}
    assert all(orjson.loads(v)["event_id"] for v in valid)
