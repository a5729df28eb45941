"""Simulate and replay into a real Kafka: topics per channel, keys, batches, order.

Needs the broker `make test` starts (CC_TEST_KAFKA); skipped without it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import orjson
import pytest

from streams.contract.decode import Limits, decode_message
from streams.replay import cli as replay_cli
from streams.simulator import cli as simulate_cli
from tests.simulator.command import run_command

BOOTSTRAP = os.environ.get("CC_TEST_KAFKA")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not BOOTSTRAP, reason="needs a Kafka broker in CC_TEST_KAFKA (make test)"),
]
INPUTS = {"calls": "call", "chats": "chat", "emails": "email", "social": "social", "surveys": None}


@pytest.fixture
def topics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Fresh input topics and a config file naming them; deleted afterwards."""
    from kafka.admin import KafkaAdminClient

    suffix = uuid.uuid4().hex[:8]
    names = {name: f"sim-{name}-{suffix}" for name in INPUTS}
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics(
        {topic: {"num_partitions": 3, "replication_factor": 1} for topic in names.values()},
        timeout_ms=30_000,
        wait_for_metadata=True,
    )
    config = tmp_path / "cc-kpi.toml"
    lines = [f'[kafka]\nbootstrap = "{BOOTSTRAP}"', "[topics]"]
    lines += [f'{name} = "{topic}"' for name, topic in names.items()]
    config.write_text("\n".join(lines) + "\n")
    monkeypatch.delenv("CC_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("CC_CONFIG", raising=False)
    yield names, str(config)
    admin.delete_topics(list(names.values()), timeout_ms=30_000, raise_errors=False)
    admin.close()


def consume(names: dict[str, str]) -> dict[str, list]:
    """Every record of the topics, by logical topic name, until 3 s of silence."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        *names.values(),
        bootstrap_servers=BOOTSTRAP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
    )
    by_topic = {topic: name for name, topic in names.items()}
    records: dict[str, list] = {name: [] for name in names}
    for record in consumer:
        records[by_topic[record.topic]].append(record)
    consumer.close()
    return records


def events_of(records: dict[str, list]) -> list[tuple[str, object]]:
    out = []
    for name, items in records.items():
        for record in items:
            decoded = decode_message(record.value, INPUTS[name], Limits())
            assert decoded.rejections == []
            out.extend((name, event) for event in decoded.events)
    return out


def test_simulate_sends_each_event_to_its_topic_keyed_by_customer(topics, tmp_path):
    names, config = topics
    args = ("simulate", "normal-day", "--duration", "90m", "--seed", "2")
    assert run_command(simulate_cli, "--config", config, *args, "--out", "kafka") == 0
    jsonl = tmp_path / "same.jsonl"
    assert run_command(simulate_cli, *args, "--out", str(jsonl)) == 0
    expected = [orjson.loads(line) for line in jsonl.read_bytes().splitlines()]

    records = consume(names)
    got = events_of(records)
    assert sorted(e.event_id for _, e in got) == sorted(e["event_id"] for e in expected)
    for name, event in got:
        assert (event.type == "survey.answered") == (name == "surveys")
        if name != "surveys":
            assert event.channel == INPUTS[name]
    for items in records.values():
        for record in items:
            assert record.key.decode() == orjson.loads(record.value)["customer_id"]
    assert {name for name, items in records.items() if items} >= {"calls", "chats", "social"}


def test_batches_carry_the_same_events(topics, tmp_path):
    names, config = topics
    busy = ("simulate", "understaffing", "--start", "2026-11-23T09:00:00Z", "--duration", "1h")
    assert (
        run_command(simulate_cli, "--config", config, *busy, "--out", "kafka", "--batch", "10") == 0
    )
    records = consume(names)
    sizes = [
        len(orjson.loads(r.value)) for items in records.values() for r in items if r.key is None
    ]
    assert max(sizes) == 10 and sum(sizes) > 1000  # up to 10 events, or 60 s of event time
    got = events_of(records)
    jsonl = tmp_path / "same.jsonl"
    run_command(simulate_cli, *busy, "--out", str(jsonl))
    assert sorted(e.event_id for _, e in got) == sorted(
        orjson.loads(line)["event_id"] for line in jsonl.read_bytes().splitlines()
    )


def test_replay_sends_in_event_time_order(topics, tmp_path):
    names, config = topics
    source = tmp_path / "disordered.jsonl"
    simulate = ("simulate", "normal-day", "--duration", "2h", "--disorder", "0.3")
    assert run_command(simulate_cli, *simulate, "--out", str(source)) == 0
    assert run_command(replay_cli, "--config", config, "replay", str(source)) == 0
    records = consume(names)
    assert len(events_of(records)) == len(source.read_bytes().splitlines())
    per_partition: dict[tuple[str, int], list[int]] = {}
    for name, items in records.items():
        for record in items:
            ts = decode_message(record.value, INPUTS[name], Limits()).events[0].ts
            per_partition.setdefault((name, record.partition), []).append(ts)
    assert sum(len(times) for times in per_partition.values()) > 100
    for times in per_partition.values():
        assert times == sorted(times)  # the file was not in order; each partition is
