"""The stages wired in memory: results equal the naive computation, whatever the
arrival order within the lateness, duplicates, or a restart from the changelog."""

import random
from dataclasses import replace

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.config import Settings
from streams.feed import Feed, event_ms
from streams.pipeline.stages import BoardStage, Customers, Interactions
from tests import naive
from tests.pipeline.harness import LocalPipeline

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
WALL = 2_000_000_000_000
SETTINGS = replace(Settings(), clock="event")


@pytest.fixture(scope="module")
def traffic():
    events = Feed(seed=7, start_ms=T0, customers=60, gap_ms=3_000).contacts(400)
    return [(item.topic, item.event) for item in events]


def run(messages, settings=SETTINGS, chunk=37):
    pipe = LocalPipeline(settings)
    for i in range(0, len(messages), chunk):
        pipe.send([(t, orjson.dumps(e)) for t, e in messages[i : i + chunk]], WALL)
    pipe.report_live(WALL)
    return pipe


def final(pipe):
    # Every input idle: the watermark is the largest event time seen.
    return pipe.records(WALL + SETTINGS.idle_timeout_ms + 1)


def check_against_naive(records, messages):
    facts = naive.facts_of(messages)
    assert records
    checked = 0
    for key, record in records.items():
        bounds = (naive.ms(record["window_start"]), naive.ms(record["window_end"]))
        expected = naive.window(facts, *bounds)
        group = (record["channel"], record["queue"], record["network"] or "-")
        if group not in expected:
            assert record["counts"] == dict.fromkeys(naive.COUNT_NAMES, 0), key
            continue
        assert naive.compare(record, expected[group]) == [], key
        checked += 1
    assert checked > 20


def test_records_equal_the_naive_computation(traffic):
    check_against_naive(final(run(traffic)), traffic)


def shuffled_within_lateness(messages, seed):
    rng = random.Random(seed)
    lateness = SETTINGS.lateness_ms
    keyed = [(event_ms(e) + rng.uniform(0, lateness * 0.9), i) for i, (_, e) in enumerate(messages)]
    return [messages[i] for _, i in sorted(keyed)]


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1), chunk=st.integers(min_value=1, max_value=80)
)
def test_order_within_lateness_and_duplicates_change_nothing(traffic, seed, chunk):
    reference = final(run(traffic))
    rng = random.Random(seed)
    noisy = shuffled_within_lateness(traffic, seed)
    for _ in range(len(noisy) // 10):
        i = rng.randrange(len(noisy))
        j = min(len(noisy), i + rng.randrange(1, 20))
        noisy.insert(j, noisy[i])
    pipe = run(noisy, chunk=chunk)
    assert pipe.stats.duplicates.total() >= len(traffic) // 10
    assert pipe.stats.late.total() == 0
    assert final(pipe) == reference


def test_wall_clock_windows_end_now():
    now = T0 + 3_600_000
    pipe = LocalPipeline(Settings())
    feed = Feed(seed=3, start_ms=now - 600_000, customers=30, gap_ms=5_000)
    messages = []
    for at, item in feed.live():
        if at > now:
            break
        messages.append((item.topic, orjson.dumps(item.event)))
    pipe.send(messages, now)
    records = pipe.records(now)
    five = records["call|*|-|5m"]
    assert five["window_end"] == "2026-01-01T01:00:05Z"
    assert five["window_start"] == "2026-01-01T00:55:05Z"
    hour = records["call|*|-|1h"]
    assert 0 < five["counts"]["started"] < hour["counts"]["started"]
    # An hour later with no traffic the 5-minute window is empty again.
    later = pipe.records(now + 3_600_000)["call|*|-|5m"]
    assert later["counts"]["started"] == 0 and later["kpis"]["service_level"] is None


def test_restart_from_the_changelog_gives_the_same_result(traffic):
    reference = final(run(traffic))
    half = len(traffic) // 2
    first = run(traffic[:half])
    restarted = LocalPipeline(SETTINGS)
    restarted.interactions = Interactions(
        SETTINGS, first.interactions.store.replayed(), restarted.stats
    )
    restarted.customers = Customers(SETTINGS, first.customers.store.replayed())
    restarted.board = BoardStage(SETTINGS, first.board.store.replayed())
    for partition in range(SETTINGS.internal_partitions):
        restarted.interactions.adopt(partition)
        restarted.board.adopt(partition)
    # at-least-once: the restarted worker sees some events again; ingest sends
    # them on as new messages, after those the stages read before
    replay_from = half - 25
    restarted.offset = replay_from
    restarted.read = first.read.copy()
    for i in range(replay_from, len(traffic), 37):
        chunk = traffic[i : min(i + 37, len(traffic))]
        restarted.send([(t, orjson.dumps(e)) for t, e in chunk], WALL)
    restarted.report_live(WALL)
    assert final(restarted) == reference


def test_late_events_beyond_the_lateness_are_counted_and_ignored(traffic):
    reference = final(run(traffic))
    late = {
        "event_id": "late-1",
        "type": "contact.started",
        "ts": T0 - 3_600_000,
        "interaction_id": "late-i",
        "customer_id": "x",
        "queue": "billing",
    }
    pipe = run([*traffic, ("cc.calls", late)])
    assert pipe.stats.late["cc.calls"] == 1
    assert final(pipe) == reference


def test_live_queue_gauges():
    settings = replace(SETTINGS, lateness_ms=3_600_000)
    pipe = LocalPipeline(settings)
    waiting = [
        {
            "event_id": f"w{i}",
            "type": "contact.started",
            "ts": T0 + i * 10_000,
            "interaction_id": f"w{i}",
            "customer_id": f"c{i}",
            "queue": "billing",
        }
        for i in range(3)
    ]
    answered = {
        "event_id": "a",
        "type": "agent.responded",
        "ts": T0 + 15_000,
        "interaction_id": "w1",
        "agent_id": "x",
    }
    clock = {
        "event_id": "tick",
        "type": "contact.started",
        "ts": T0 + 60_000,
        "interaction_id": "other",
        "customer_id": "z",
        "queue": "support",
    }
    pipe.send([("cc.calls", orjson.dumps(e)) for e in [*waiting, answered, clock]], WALL)
    pipe.report_live(WALL)
    record = pipe.records(WALL + settings.idle_timeout_ms + 1)["call|billing|-|5m"]
    # w0 and w2 wait; at T0+60s w0 waited 60 s and w2 40 s: both past 80 % of 30 s
    assert record["kpis"]["queue_now"] == 2
    assert record["kpis"]["oldest_waiting_seconds"] == 60.0
    assert record["kpis"]["at_risk"] == 2
    rollup = pipe.records(WALL + settings.idle_timeout_ms + 1)["call|*|-|5m"]
    assert rollup["kpis"]["queue_now"] == 3


def test_bad_messages_are_dead_lettered_and_the_rest_counts(traffic):
    pipe = LocalPipeline(SETTINGS)
    good = traffic[0]
    batch = orjson.dumps([good[1], {"event_id": "x"}, 5])
    pipe.send([("cc.calls", b"{not json"), (good[0], batch)], WALL)
    reasons = sorted((d.reason, d.index) for d in pipe.deadletters)
    assert reasons == [("invalid_json", None), ("missing_field", 1), ("not_an_object", 2)]
    assert pipe.deadletters[0].raw == b"{not json"
    assert orjson.loads(pipe.deadletters[1].raw) == {"event_id": "x"}
    assert pipe.stats.events.total() == 1
