"""The flood test on real Kafka and Redis: 100,000 events with random queue,
agent and network names through a real worker. Redis keys and /metrics stay
within the label caps, every contact is counted (folded ones under `other`),
and the cap is reported on /metrics."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest
import redis

from streams.config import ALL, NO_NETWORK, UNKNOWN, LabelLimits
from tests.integration.pipeline_runner import wait_for
from tests.pipeline.test_flood import flood, sent_contacts

pytestmark = pytest.mark.slow

LIMITS = LabelLimits()  # the defaults: 50 queues, 20 networks per channel
CHANNELS = ("call", "chat", "email", "social")


def batched(messages: list[tuple[str, dict[str, Any]]], size: int = 200):
    """Consecutive events of a topic as JSON-array batches (events.md "Batches")."""
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for topic, event in messages:
        pending[topic].append(event)
        if len(pending[topic]) == size:
            yield topic, None, orjson.dumps(pending.pop(topic))
    for topic, events in pending.items():
        yield topic, None, orjson.dumps(events)


def redis_keys(url: str) -> list[str]:
    client = redis.Redis.from_url(url)
    try:
        return [k.decode() for k in client.scan_iter(match="cc:*", count=1000)]
    finally:
        client.close()


def test_a_flood_of_random_names_stays_within_the_caps(deployment):
    began = time.monotonic()
    messages = flood(100_000, seed=21, run=deployment.app_id)
    sent = sent_contacts(messages)
    worker = deployment.start_worker()
    deployment.produce(batched(messages))

    def counted() -> dict[str, dict[str, Any]] | None:
        """The Redis snapshot once it counts every contact in the 24h window."""
        records = deployment.redis_records()
        leaves = [
            r
            for r in records.values()
            if r["window"] == "24h" and ALL not in (r["queue"], r["network"])
        ]
        total = sum(r["counts"]["started"] for r in leaves)
        return records if total == sum(sent.values()) else None

    records = wait_for(counted, 85 - (time.monotonic() - began), "every contact in Redis")

    # Keys: per channel the first max_queues (max_networks) names, `other` and `*`,
    # and `unknown` (an end may overtake its start: the input is not keyed).
    keys = {(r["channel"], r["queue"], r["network"] or NO_NETWORK) for r in records.values()}
    reserved = {LIMITS.other, ALL, UNKNOWN}
    for channel in CHANNELS:
        queues = {q for c, q, _ in keys if c == channel}
        assert len(queues - reserved) == LIMITS.max_queues, channel
        assert {LIMITS.other, ALL} <= queues
    networks = {n for c, _, n in keys if c == "social"}
    assert len(networks - reserved) == LIMITS.max_networks
    bound = 3 * (LIMITS.max_queues + 3) + (LIMITS.max_queues + 3) * (LIMITS.max_networks + 3)
    assert len(keys) <= bound
    assert len(records) == 3 * len(keys)
    # Redis holds the records and at most one SLA event per record key and KPI.
    stored = Counter(key.split(":")[1] for key in redis_keys(deployment.redis_url))
    assert stored["kpi"] == len(records) and stored["sla"] <= 6 * len(keys)

    # Names kept hold exactly their own contacts; `other` the rest.
    started: Counter[tuple[str, str, str]] = Counter()
    for r in records.values():
        key = (r["channel"], r["queue"], r["network"] or NO_NETWORK)
        if r["window"] == "24h" and ALL not in key:
            started[key] = r["counts"]["started"]
    for key, count in started.items():
        if LIMITS.other not in key:
            assert count == sent[key], key
    folded = sum(count for key, count in sent.items() if key not in started)
    assert sum(started[k] for k in started if LIMITS.other in k) == folded > 0

    # /metrics: bounded by the keys, and the cap metrics report the folding.
    text = worker.metrics_text() or ""
    assert len(text.splitlines()) < 200 * len(keys)
    samples = worker.samples()
    assert samples[("cc_label_cap", (("label", "queue"),))] == LIMITS.max_queues
    assert samples[("cc_label_cap", (("label", "network"),))] == LIMITS.max_networks
    for channel in CHANNELS:
        labels = (("channel", channel), ("label", "queue"))
        assert samples[("cc_label_values", labels)] == LIMITS.max_queues
        names = {q for c, q, _ in sent if c == channel}
        estimate = samples[("cc_label_folded_values", labels)]
        assert estimate == pytest.approx(len(names) - LIMITS.max_queues, rel=0.05)
    labels = (("channel", "social"), ("label", "network"))
    assert samples[("cc_label_values", labels)] == LIMITS.max_networks
    assert time.monotonic() - began < 90
