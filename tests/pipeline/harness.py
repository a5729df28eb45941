"""The pipeline's stages wired together in memory, without Kafka: what the
Faust agents do, message for message, for tests of the stages' logic."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson
import pytest
from prometheus_client.registry import Collector

from streams.config import Settings
from streams.pipeline.outgoing import Outgoing
from streams.pipeline.stages import (
    BoardStage,
    Customers,
    Ingest,
    Interactions,
    Outbox,
    SlaTracker,
    Stats,
)
from streams.publish.prometheus import Exposition, registry
from streams.publish.text_format import generate_latest

LIMIT = 1000
"""Items per message between stages, as in the app."""


class DictStore:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.writes: list[tuple[int, str, bytes | None]] = []
        self.marks: dict[int, Any] = {}

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def put(self, partition: int, key: str, value: Any, wire: bytes) -> None:
        self.data[key] = value
        self.writes.append((partition, key, wire))

    def put_bytes(self, partition: int, key: str, wire: bytes) -> None:
        self.put(partition, key, wire, wire)

    def delete(self, partition: int, key: str) -> None:
        self.data.pop(key, None)
        self.writes.append((partition, key, None))

    def scan(self) -> Iterable[str]:
        return list(self.data)

    def commit(self, marks: dict[int, Any] | None = None) -> None:
        """Writes are durable at once here; marks are kept as a restart finds them."""
        for partition, mark in (marks or {}).items():
            self.marks[partition] = orjson.loads(orjson.dumps(mark))

    def restore(self, partition: int) -> Any:
        return self.marks.get(partition)

    def replayed(self) -> DictStore:
        """A store rebuilt from the changelog only (what a restarted worker sees)."""
        fresh = DictStore()
        for _partition, key, wire in self.writes:
            if wire is None:
                fresh.data.pop(key, None)
            else:
                fresh.data[key] = wire
        fresh.marks = dict(self.marks)
        return fresh


class LocalPipeline:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stats = Stats()
        self.ingest = Ingest(settings, self.stats)
        self.interactions = Interactions(settings, DictStore(), self.stats)
        self.customers = Customers(settings, DictStore())
        self.board = BoardStage(settings, DictStore())
        self.sla = SlaTracker(settings, DictStore())
        self.deadletters: list[Any] = []
        self.offset = 0
        self.read: Counter[str] = Counter()
        """Messages read per stage partition ("i0", "c1", ...): their offsets."""

    def send(self, messages: Iterable[tuple[str, bytes]], wall_ms: int, partition: int = 0) -> None:
        """Input messages (topic, value) through every stage."""
        batch = []
        for topic, raw in messages:
            batch.append((topic, partition, self.offset, raw))
            self.offset += 1
        out = Outbox()
        self.ingest.process(batch, wall_ms, out)
        self.deadletters.extend(out.deadletters)
        self._drain(out, wall_ms)
        # Ingest's progress report, after the events it covers, as report_live sends it.
        progress = self.ingest.progress(wall_ms)
        heartbeats = Outbox()
        for partition in range(self.settings.internal_partitions):
            heartbeats.interactions[partition] = []
        self._drain(heartbeats, wall_ms, progress)
        self.board.process({"progress": progress}, wall_ms)
        self.board.flush()

    def _drain(self, out: Outbox, wall_ms: int, progress: list[list[Any]] | None = None) -> None:
        """Each interaction partition reads one message, then each customers
        partition the facts sent to it, as one batch per stage partition."""
        from_interactions = Outgoing(LIMIT)
        for partition, items in sorted(out.interactions.items()):
            payload = {"e": items} if progress is None else {"e": items, "progress": progress}
            sender = f"i{partition}"
            offset = self._next_offset(sender)
            produced = Outbox()
            self.interactions.process(partition, _wire(payload), produced, wall_ms, offset)
            from_interactions.add(sender, offset, produced)
        from_customers = Outgoing(LIMIT)
        for partition, body in from_interactions.customer_messages():
            sender = f"c{partition}"
            offset = self._next_offset(sender)
            produced = Outbox()
            self.customers.process(partition, _wire(body), produced, wall_ms, offset)
            from_customers.add(sender, offset, produced)
        for sent in (from_interactions, from_customers):
            self.deadletters.extend(sent.deadletters)
            for partition, body in sent.delta_messages():
                self.board.process(_wire(body), wall_ms, partition)

    def _next_offset(self, sender: str) -> int:
        offset = self.read[sender]
        self.read[sender] += 1
        return offset

    def report_live(self, wall_ms: int) -> None:
        for partition in list(self.interactions.waiting):
            gauges = self.interactions.live(partition, wall_ms)
            rows = [[*key, g.queue_now, g.oldest_start_ms, g.at_risk] for key, g in gauges.items()]
            self.board.process(_wire({"live": partition, "to": 0, "g": rows}), wall_ms)

    def records(self, wall_ms: int) -> dict[str, dict[str, Any]]:
        self.board.tick(wall_ms)
        self.board.flush()
        return {
            "|".join((r["channel"], r["queue"], r["network"] or "-", r["window"])): r
            for r in self.board.board.records(self.board.labels)
        }


def _wire(payload: dict[str, Any]) -> dict[str, Any]:
    """Through JSON and back, as between real stages."""
    return orjson.loads(orjson.dumps(payload))


def exposition(
    pipe: LocalPipeline, records: list[dict[str, Any]], snapshot_ms: int, **extra: Any
) -> bytes:
    """The /metrics text of the pipeline's board as it stands (`extra`: lag, caps,
    redis_up)."""
    return generate_latest(exposition_registry(pipe, records, snapshot_ms, **extra))


def exposition_registry(
    pipe: LocalPipeline, records: list[dict[str, Any]], snapshot_ms: int, **extra: Any
) -> Collector:
    """What /metrics collects from the pipeline's board as it stands."""

    def source() -> Exposition:
        return Exposition(
            records=records,
            settled=list(pipe.board.board.settled()),
            sla=list(pipe.sla.breached()),
            stats=pipe.stats,
            min_contacts=pipe.settings.min_contacts,
            clock_ms=pipe.board.board.clock_ms,
            snapshot_ms=snapshot_ms,
            redis_errors=0,
            **{"redis_up": True, "board_partitions": len(pipe.board.held()), **extra},
        )

    return registry(source)


needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None and not os.environ.get("CI"),
    reason="promtool is installed by make setup (in CI a missing promtool fails)",
)


def assert_promtool_clean(text: bytes) -> None:
    """`promtool check metrics` accepts the text and has nothing to say about it."""
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout.decode() + result.stderr.decode()
    )
