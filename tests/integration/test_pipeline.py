"""The pipeline end to end on real Kafka and Redis, checked against the naive
computation: Redis snapshot, cc.kpis and /metrics; a restart; two workers.
Bad input: test_bad_input.py."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from typing import Any

import orjson
import pytest
from kafka.admin import ConfigResource

from streams.pipeline.topics import changelog_topics
from streams.pipeline.wire import channel_partitions
from streams.publish.prometheus import KPI_METRICS
from tests import naive
from tests.integration.conftest import flush_redis_db
from tests.integration.pipeline_runner import (
    PARTITIONS,
    T0,
    Deployment,
    TimedOut,
    Worker,
    feed_messages,
    wait_for,
)


@pytest.fixture(scope="module")
def traffic() -> list[tuple[str, dict[str, Any]]]:
    return feed_messages(seed=11, customers=400, gap_ms=2_000, contacts=2_200, at_least=10_000)


def encoded(messages: list[tuple[str, dict[str, Any]]], seed: int = 5):
    """Kafka messages: most keyed by customer, some by a random key; some events
    batched into JSON arrays with their neighbours on the same topic."""
    rng = random.Random(seed)
    out: list[tuple[str, bytes | None, bytes]] = []
    i = 0
    while i < len(messages):
        topic, event = messages[i]
        key = event.get("customer_id") or event["interaction_id"]
        key_bytes = key.encode() if rng.random() < 0.8 else f"k{rng.randrange(999)}".encode()
        if rng.random() < 0.2:
            batch = [event]
            while i + 1 < len(messages) and messages[i + 1][0] == topic and len(batch) < 25:
                i += 1
                batch.append(messages[i][1])
            out.append((topic, key_bytes, orjson.dumps(batch)))
        else:
            out.append((topic, key_bytes, orjson.dumps(event)))
        i += 1
    return out


WINDOW_MS = {"5m": 300_000, "1h": 3_600_000, "24h": 86_400_000}


def problems(records: dict[str, dict[str, Any]], facts: naive.Facts) -> list[str]:
    """Differences from the naive KPIs over the final windows: after the input is
    drained the event clock is the latest event time, so each window ends at the
    end of the bucket (span / 60) that holds it."""
    if not records:
        return ["no records yet"]
    found: list[str] = []
    latest = facts.latest
    for key, record in records.items():
        step = WINDOW_MS[record["window"]] // 60
        want_end = naive.iso_ms((latest // step + 1) * step)
        if record["window_end"] != want_end:
            found.append(f"{key}: window_end {record['window_end']} is not the final {want_end}")
    if found:
        return found
    groups_by_window: dict[str, set] = defaultdict(set)
    for key, record in records.items():
        bounds = (naive.ms(record["window_start"]), naive.ms(record["window_end"]))
        expected = naive.window(facts, *bounds)
        group = (record["channel"], record["queue"], record["network"] or "-")
        groups_by_window[record["window"]].add(group)
        want = expected.get(group)
        if want is None:
            if any(record["counts"].values()):
                found.append(f"{key}: unexpected counts {record['counts']}")
            continue
        found += [f"{key}: {p}" for p in naive.compare(record, want)]
    for window in ("5m", "1h", "24h"):
        if not groups_by_window[window]:
            found.append(f"no records for window {window}")
    return found


def wait_until_correct(deployment: Deployment, facts: naive.Facts, timeout: float = 240) -> dict:
    last: list[list[str]] = [[]]

    def probe() -> dict | None:
        records = deployment.redis_records()
        last[0] = problems(records, facts)
        return records if not last[0] else None

    try:
        return wait_for(
            probe,
            timeout,
            "the Redis snapshot to equal the naive KPIs",
            log=deployment.workers[-1].log,
        )
    except TimedOut as error:
        raise TimedOut(f"{error}\nfirst differences: {last[0][:15]}") from None


def check_metrics(workers: list[Worker], records: dict[str, dict[str, Any]]) -> None:
    """The sum over workers of each windowed count and the one sample of each KPI
    equal the record's figures (the record is the naive-checked snapshot)."""
    totals: dict[tuple, float] = defaultdict(float)
    for worker in workers:
        for key, value in worker.samples().items():
            totals[key] += value
    checked = 0
    for record in records.values():
        labels = (
            ("channel", record["channel"]),
            ("network", record["network"] or "-"),
            ("queue", record["queue"]),
            ("window", record["window"]),
        )
        for name, count in record["counts"].items():
            assert totals.get((f"cc_window_{name}", labels)) == count, (name, labels)
        for name, (metric, _help) in KPI_METRICS.items():
            value = record["kpis"][name]
            if value is None:
                assert (metric, labels) not in totals, (metric, labels)
            else:
                assert totals[(metric, labels)] == pytest.approx(value, rel=1e-9), (metric, labels)
                checked += 1
    assert checked > 100
    # Every board partition that holds a channel is held, and by one worker only.
    held = [w.samples()[("cc_board_partitions", ())] for w in workers]
    assert sum(held) == len(channel_partitions(PARTITIONS)), held


def test_the_tables_changelogs_exist_before_the_first_worker_starts(deployment, kafka_admin):
    """Created with the other internal topics, with Faust's settings: Faust
    makes them only as its consumer joins the group, which then forms without
    them ("Ignoring missing topic")."""
    wanted = changelog_topics(deployment.app_id)
    described = kafka_admin.describe_configs(
        [ConfigResource("TOPIC", name) for name in wanted], config_filter="modified"
    )["topic"]
    for name, settings in wanted.items():
        assert {key: described[name][key]["value"] for key in settings} == settings, name
    partitions = {
        t["name"]: len(t["partitions"]) for t in kafka_admin.describe_topics(list(wanted))
    }
    assert partitions == dict.fromkeys(wanted, PARTITIONS)
    worker = deployment.start_worker()
    wait_for(lambda: "Worker]: Ready" in worker.log_tail(400), 90, "the worker to be ready")
    assert "Ignoring missing topic" not in worker.log.read_text(errors="replace")


def test_kpis_in_redis_kafka_and_metrics_equal_the_naive_computation(deployment, traffic):
    facts = naive.facts_of(traffic)
    worker = deployment.start_worker()
    deployment.produce(encoded(traffic))
    records = wait_until_correct(deployment, facts)
    assert len(records) >= 54  # every queue and roll-up of the feed, three windows
    check_metrics([worker], records)
    latest = wait_for(
        lambda: (lambda r: r if not problems(r, facts) else None)(deployment.latest_kpi_records()),
        60,
        "cc.kpis to carry the final snapshot",
    )
    assert set(latest) == set(records)
    text = worker.metrics_text() or ""
    assert "cc_frt_seconds_bucket" in text and "cc_started_total" in text
    check_sla_events(deployment, records)


SLA_RULES = {  # kpi: (higher is better, denominator counts)
    "service_level": (True, ("answered", "abandoned")),
    "answer_rate": (True, ("answered", "abandoned")),
    "abandonment_rate": (False, ("answered", "abandoned")),
    "fcr_rate": (True, ("resolved",)),
    "escalation_rate": (False, ("ended",)),
    "csat": (True, ("csat_answers",)),
}


def check_sla_events(deployment: Deployment, records: dict[str, dict[str, Any]]) -> None:
    """The last cc.sla event of every KPI agrees with the final 1h record where that
    holds at least 20 contacts: on the wrong side of the target it ends in
    `breach`, on the right side in `recovered` or it never breached."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for message in deployment.read_topic("sla"):
        event = orjson.loads(message.value)
        assert event["schema"] == "cc.sla.v1"
        last[(message.key.decode(), event["kpi"])] = event
    for key, record in records.items():
        if record["window"] != "1h":
            continue
        for kpi, (higher, denominator) in SLA_RULES.items():
            target, value = record["targets"].get(kpi), record["kpis"][kpi]
            contacts = sum(record["counts"][n] for n in denominator)
            if target is None or value is None or contacts < 20:
                continue
            bad = value < target if higher else value > target
            event = last.get((key, kpi))
            if bad:
                assert event is not None and event["state"] == "breach", (key, kpi, value)
                assert event["target"] == target
            else:
                assert event is None or event["state"] == "recovered", (key, kpi, value)


def test_restart_mid_stream_gives_the_same_kpis(deployment, traffic):
    facts = naive.facts_of(traffic)
    messages = encoded(traffic)
    half = len(messages) // 2
    worker = deployment.start_worker()
    deployment.produce(messages[:half])
    wait_for(
        lambda: (
            sum(v for (n, _), v in worker.samples().items() if n == "cc_events_total") >= half * 0.9
        ),
        120,
        "the first half to be consumed",
        log=worker.log,
    )
    worker.stop()
    deployment.start_worker()
    deployment.produce(messages[half:])
    wait_until_correct(deployment, facts)


def kpi_samples(worker: Worker) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The series of /metrics that the records make (windowed counts and KPIs)."""
    return {
        key: value
        for key, value in worker.samples().items()
        if key[0].startswith(("cc_kpi_", "cc_window_"))
    }


def test_a_worker_restarted_in_a_quiet_hour_serves_what_it_recovered(deployment, traffic):
    """No event comes after the restart (a night, a deploy between two bursts):
    the restarted worker serves and snapshots the KPIs as the stopped one left
    them, rather than nothing until traffic resumes."""
    facts = naive.facts_of(traffic)
    worker = deployment.start_worker()
    deployment.produce(encoded(traffic))
    wait_until_correct(deployment, facts)
    served = wait_for(lambda: kpi_samples(worker), 30, "the KPIs on /metrics", log=worker.log)
    worker.stop()
    flush_redis_db(deployment.redis_url)
    restarted = deployment.start_worker()
    wait_for(
        lambda: kpi_samples(restarted) == served,
        60,
        "the restarted worker to serve the KPIs it recovered",
        log=restarted.log,
    )
    wait_until_correct(deployment, facts, timeout=60)


@pytest.mark.xfail(
    reason="known gap (README, Guarantees): with two workers, the board's clock has "
    "stopped at the start in some runs: once a Faust table recovery hang, once an "
    "assignment that gave the second worker only input partitions; only a timeout "
    "counts as that gap (a wrong figure, a crash or a broken fixture fails the test)",
    raises=TimedOut,
    strict=False,
)
def test_two_workers_give_the_same_kpis_as_one(deployment, traffic, kafka_admin):
    facts = naive.facts_of(traffic)
    first = deployment.start_worker()
    second = deployment.start_worker()

    def both_in_the_group() -> bool:
        group = kafka_admin.describe_groups([deployment.app_id])[deployment.app_id]
        return group["group_state"] == "Stable" and len(group["members"]) == 2

    # Both share the input from its first message, or the first could read
    # all of it before the second joins.
    wait_for(both_in_the_group, 120, "both workers in the consumer group")
    deployment.produce(encoded(traffic))
    records = wait_until_correct(deployment, facts)

    def both_busy() -> bool:
        return all(
            any(n == "cc_events_total" and v > 0 for (n, _), v in w.samples().items())
            for w in (first, second)
        )

    assert both_busy(), "both workers should have consumed input partitions"
    check_metrics([first, second], records)
    assert not problems(deployment.latest_kpi_records(), facts)


def calls(first: int, count: int, frt_ms: int, prefix: str) -> list[tuple[str, None, bytes]]:
    out = []
    for i in range(count):
        at = T0 + (first + i) * 10_000
        iid = f"{prefix}{i}"
        out.append(
            (
                "calls",
                None,
                orjson.dumps(
                    {
                        "event_id": f"{iid}-s",
                        "type": "contact.started",
                        "ts": at,
                        "interaction_id": iid,
                        "customer_id": f"c-{iid}",
                        "queue": "billing",
                    }
                ),
            )
        )
        out.append(
            (
                "calls",
                None,
                orjson.dumps(
                    {
                        "event_id": f"{iid}-r",
                        "type": "agent.responded",
                        "ts": at + frt_ms,
                        "interaction_id": iid,
                        "agent_id": "a1",
                    }
                ),
            )
        )
    return out


def test_sla_breach_and_recovery_are_announced_once_each(deployment):
    """25 calls answered after 60 s breach the 80 %-within-30 s service level; 200
    calls answered in 5 s bring the hour back above it."""
    worker = deployment.start_worker()
    key = "call|billing|-|1h"

    def events() -> list[dict[str, Any]]:
        return [
            orjson.loads(m.value)
            for m in deployment.read_topic("sla")
            if m.key.decode() == key and orjson.loads(m.value)["kpi"] == "service_level"
        ]

    deployment.produce(calls(0, 25, 60_000, "slow"))
    wait_for(lambda: events(), 60, "a breach on cc.sla", log=worker.log)
    time.sleep(3)  # several more snapshots of the same state
    first = events()
    # announced as soon as a snapshot saw the minimum volume (20) of slow answers
    assert [(e["state"], e["value"], e["target"]) for e in first] == [("breach", 0.0, 0.8)]
    assert 20 <= first[0]["contacts"] <= 25
    redis_state = deployment.redis_sla("service_level", key)
    assert redis_state is not None and redis_state["state"] == "breach"
    deployment.produce(calls(25, 200, 5_000, "fast"))
    wait_for(lambda: len(events()) == 2, 60, "the recovery on cc.sla", log=worker.log)
    time.sleep(3)
    assert [e["state"] for e in events()] == ["breach", "recovered"]


def test_sigquit_writes_every_threads_stack_to_the_log_and_the_worker_goes_on(deployment):
    """For a worker that stops moving or does not stop: its stacks, even with
    the event loop blocked (faulthandler, not a task of the loop)."""
    worker = deployment.start_worker()
    worker.dump_stacks()
    log = worker.log.read_text(errors="replace")
    assert "most recent call first" in log
    assert "Current thread" in log
    assert worker.metrics_text() is not None
