"""A flood of random queue, agent and network names through every stage: the
board, the records and /metrics stay within the label caps, the `other` bucket
holds every folded contact, and the cap metrics report the folding."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.config import ALL, NO_NETWORK, Settings
from streams.feed import TOPIC_OF, rfc3339
from tests.pipeline.harness import LocalPipeline, assert_promtool_clean, exposition, needs_promtool

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
WALL = 2_000_000_000_000
REGULAR_QUEUES = ("billing", "support", "sales")
REGULAR_NETWORKS = ("facebook", "instagram")


def flood(events: int, seed: int, run: str = "") -> list[tuple[str, dict[str, Any]]]:
    """About `events` contract events, in event-time order: contacts every 200 ms
    on all channels; 70 % of them on a queue (and social network) named at random,
    the rest on a few regular ones; every agent id random."""
    rng = random.Random(seed)
    out: list[tuple[str, int, dict[str, Any]]] = []
    at = T0
    n = 0

    def name(prefix: str, regular: tuple[str, ...]) -> str:
        if rng.random() < 0.3:
            return rng.choice(regular)
        return f"{prefix}-{rng.getrandbits(48):012x}"

    while len(out) < events:
        n += 1
        at += rng.randrange(1, 400)
        channel = rng.choice(("call", "chat", "email", "social"))
        iid = f"{run}fl-{n}"
        started: dict[str, Any] = {"queue": name("q", REGULAR_QUEUES), "customer_id": f"c-{n}"}
        if channel == "social":
            started["network"] = name("net", REGULAR_NETWORKS)
        lifecycle = [("contact.started", at, started)]
        if rng.random() < 0.1:
            lifecycle.append(("contact.abandoned", at + 20_000, {}))
        else:
            agent = f"agent-{rng.getrandbits(48):012x}"
            lifecycle.append(
                ("agent.responded", at + rng.randrange(1, 60_000), {"agent_id": agent})
            )
            lifecycle.append(("contact.ended", at + 90_000, {"resolved": True, "agent_id": agent}))
        for i, (kind, ts, fields) in enumerate(lifecycle):
            event = {
                "event_id": f"{iid}-{i}",
                "type": kind,
                "ts": rfc3339(ts),
                "interaction_id": iid,
                **fields,
            }
            out.append((TOPIC_OF[channel], ts, event))
    out.sort(key=lambda item: item[1])
    return [(topic, event) for topic, _, event in out]


def sent_contacts(messages: list[tuple[str, dict[str, Any]]]) -> Counter[tuple[str, str, str]]:
    """Contacts started per raw (channel, queue, network)."""
    channel_of = {topic: channel for channel, topic in TOPIC_OF.items()}
    return Counter(
        (channel_of[topic], e["queue"], e.get("network", NO_NETWORK))
        for topic, e in messages
        if e["type"] == "contact.started"
    )


def series_keys(text: bytes) -> set[tuple[str, str, str]]:
    return {
        (s.labels["channel"], s.labels["queue"], s.labels["network"])
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
        if "queue" in s.labels
    }


def samples(text: bytes, name: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(s.labels[label] for label in sorted(s.labels)): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
        if s.name == name
    }


def feed(pipe: LocalPipeline, messages: list[tuple[str, dict[str, Any]]]) -> None:
    for i in range(0, len(messages), 2_000):
        chunk = messages[i : i + 2_000]
        pipe.send([(topic, orjson.dumps(event)) for topic, event in chunk], WALL)
    pipe.report_live(WALL)
    assert not pipe.deadletters


@pytest.mark.slow
def test_a_flood_of_random_names_stays_within_the_caps():
    settings = replace(Settings(), clock="event")
    limits = settings.labels
    messages = flood(100_000, seed=7)
    assert len(messages) >= 100_000
    half = len(messages) // 2
    pipe = LocalPipeline(settings)

    feed(pipe, messages[:half])
    first = exposition(pipe, list(pipe.records(WALL).values()), WALL, caps=pipe.board.cap)
    feed(pipe, messages[half:])
    records = pipe.records(WALL)
    text = exposition(pipe, list(records.values()), WALL, caps=pipe.board.cap)

    # Twice the contacts, twice the random names: not one more key in the series.
    keys = set(pipe.board.board.keys)
    assert series_keys(text) == series_keys(first)
    other = limits.other
    for channel in ("call", "chat", "email", "social"):
        queues = {q for c, q, _ in keys if c == channel}
        networks = {n for c, _, n in keys if c == channel}
        assert other in queues and len(queues) == limits.max_queues + 1
        if channel == "social":
            assert other in networks and len(networks) == limits.max_networks + 1
        else:
            assert networks == {NO_NETWORK}
    rollups = {(c, ALL, NO_NETWORK) for c in ("call", "chat", "email")}
    social = {k for k in keys if k[0] == "social"}
    rollups |= {("social", ALL, n) for _, _, n in social}
    rollups |= {("social", q, ALL) for _, q, _ in social}
    rollups.add(("social", ALL, ALL))
    assert series_keys(text) == keys | rollups
    # A fixed set of metrics per key: a few hundred lines each at most.
    assert len(text.splitlines()) < 200 * len(keys | rollups)
    assert {(r["channel"], r["queue"], r["network"] or NO_NETWORK) for r in records.values()} == (
        keys | rollups
    )
    assert len(records) == len(keys | rollups) * len(settings.windows_ms)

    # Kept names hold exactly their own contacts; `other` holds all the rest.
    sent = sent_contacts(messages)
    started = {
        (r["channel"], r["queue"], r["network"] or NO_NETWORK): r["counts"]["started"]
        for r in records.values()
        if r["window"] == "24h" and ALL not in (r["queue"], r["network"])
    }
    assert sum(started.values()) == sum(sent.values())
    for key, count in started.items():
        if other not in key:
            assert count == sent[key], key
    folded = {key for key in sent if key not in started}
    assert sum(started[k] for k in started if other in k) == sum(sent[k] for k in folded) > 0

    # The metrics: the caps, the names kept and (an estimate of) those folded.
    assert samples(text, "cc_label_cap") == {
        ("queue",): limits.max_queues,
        ("network",): limits.max_networks,
    }
    kept = samples(text, "cc_label_values")
    estimates = samples(text, "cc_label_folded_values")
    for channel in ("call", "chat", "email", "social"):
        assert kept[(channel, "queue")] == limits.max_queues
        names = {q for c, q, _ in sent if c == channel}
        assert estimates[(channel, "queue")] == pytest.approx(len(names) - 50, rel=0.05)
    assert kept[("social", "network")] == limits.max_networks
    networks = {n for c, _, n in sent if c == "social"}
    assert estimates[("social", "network")] == pytest.approx(len(networks) - 20, rel=0.05)


def test_live_gauges_of_folded_names_add_up():
    settings = replace(Settings(), clock="event", labels=replace(Settings().labels, max_queues=1))
    pipe = LocalPipeline(settings)
    waiting = [
        ("cc.calls", {"event_id": f"e{i}", "type": "contact.started", "ts": T0 + i,
                      "interaction_id": f"i{i}", "queue": f"q{i}", "customer_id": "c"})
        for i in range(5)
    ]  # fmt: skip
    feed(pipe, waiting)
    records = pipe.records(T0 + 1_000)
    queue_now = {
        r["queue"]: r["kpis"]["queue_now"] for r in records.values() if r["window"] == "5m"
    }
    # Whichever name reached the board first kept it (interactions are partitioned).
    (kept,) = set(queue_now) - {"other", "*"}
    assert queue_now == {kept: 1, "other": 4, "*": 5}


def test_restarted_board_folds_as_before():
    """After a restart from the changelog, a name seen before the restart keeps
    its decision: a late retraction lands on the key its contribution went to."""
    settings = replace(Settings(), clock="event", labels=replace(Settings().labels, max_queues=2))
    messages = flood(3_000, seed=9)
    pipe = LocalPipeline(settings)
    feed(pipe, messages)
    restarted = LocalPipeline(settings)
    restarted.board.store = pipe.board.store.replayed()
    for partition in range(settings.internal_partitions):
        restarted.board.adopt(partition)
    probe = [(key, pipe.board.label(key)) for key in sent_contacts(messages)]
    assert [restarted.board.label(key) for key, _ in probe] == [capped for _, capped in probe]
    assert set(restarted.board.board.keys) == set(pipe.board.board.keys)


@needs_promtool
def test_cap_metrics_pass_promtool():
    settings = replace(Settings(), clock="event", labels=replace(Settings().labels, max_queues=2))
    pipe = LocalPipeline(settings)
    feed(pipe, flood(2_000, seed=3))
    text = exposition(pipe, list(pipe.records(WALL).values()), WALL, caps=pipe.board.cap)
    assert b'cc_label_folded_values{channel="call",label="queue"}' in text
    assert_promtool_clean(text)
