"""The commit order a crash relies on: outputs, then state, then input offsets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.pipeline.changelog import BatchedChangelog
from streams.pipeline.committer import Committer


class Journal:
    """Records what happened, in order, across the fakes below."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    async def flush(self) -> None:
        await asyncio.sleep(0)
        self.steps.append("flush")

    async def write_state(self) -> None:
        await asyncio.sleep(0)
        self.steps.append("state")


class Stream:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def ack(self, event: Any) -> bool:
        self.journal.steps.append(f"ack {event}")
        return True


def test_acks_come_after_the_outputs_and_the_state() -> None:
    journal = Journal()
    committer = Committer(journal.flush, journal.write_state, interval_s=0.5)
    stream = Stream(journal)
    committer.hold(stream, [1, 2])
    committer.hold(stream, [3])
    asyncio.run(committer.commit())
    assert journal.steps == ["flush", "state", "ack 1", "ack 2", "ack 3"]
    assert committer.pending == []


def test_a_failed_write_acknowledges_nothing() -> None:
    journal = Journal()

    async def broken() -> None:
        raise ConnectionError("broker gone")

    committer = Committer(journal.flush, broken, interval_s=0.5)
    committer.hold(Stream(journal), [1])
    with pytest.raises(ConnectionError):
        asyncio.run(committer.commit())
    assert journal.steps == ["flush"]
    assert [events for _, events in committer.pending] == [[1]]


def test_a_batch_taken_during_a_commit_waits_for_the_next_one() -> None:
    """The lock keeps a state change out of a commit already under way: its
    outputs were not in that commit's flush."""
    journal = Journal()
    committer = Committer(journal.flush, journal.write_state, interval_s=0.5)
    stream = Stream(journal)

    async def scenario() -> None:
        committer.hold(stream, [1])
        commit = asyncio.create_task(committer.commit())
        await asyncio.sleep(0)

        async def next_batch() -> None:
            async with committer.lock:
                committer.hold(stream, [2])

        await asyncio.gather(commit, next_batch())
        assert "ack 2" not in journal.steps
        await committer.commit()

    asyncio.run(scenario())
    assert journal.steps == ["flush", "state", "ack 1", "flush", "state", "ack 2"]


@pytest.mark.parametrize("failure", [RuntimeError("send failed"), asyncio.CancelledError()])
def test_after_a_batch_failed_half_done_nothing_of_the_stage_is_committed(
    failure: BaseException,
) -> None:
    """The failed batch changed the stage's memory without sending what it
    owed: a commit now (a timer's, or the shutdown's) would make that state
    durable, and the batch read again after the restart would send nothing."""
    journal = Journal()
    committer = Committer(journal.flush, journal.write_state, interval_s=0.0)
    stream = Stream(journal)

    async def scenario() -> None:
        async with committer.working():
            await committer.processed(stream, [1])
        with pytest.raises(type(failure)):
            async with committer.working():
                raise failure
        committer.hold(stream, [2])
        await committer.commit()

    asyncio.run(scenario())
    assert committer.broken
    assert journal.steps == ["flush", "state", "ack 1"]
    assert [events for _, events in committer.pending] == [[2]]


def test_a_batch_that_succeeds_leaves_the_stage_whole() -> None:
    journal = Journal()
    committer = Committer(journal.flush, journal.write_state, interval_s=60.0)

    async def scenario() -> None:
        async with committer.working():
            await committer.processed(Stream(journal), [1])
        await committer.commit()

    asyncio.run(scenario())
    assert not committer.broken
    assert journal.steps == ["flush", "state", "ack 1"]


def test_due_after_the_interval() -> None:
    journal = Journal()
    committer = Committer(journal.flush, journal.write_state, interval_s=0.0)
    assert committer.due
    slow = Committer(journal.flush, journal.write_state, interval_s=3600.0)
    assert not slow.due


class Batch:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes, bytes | None]] = []

    def append(self, *, key: bytes, value: bytes | None, timestamp: Any) -> Any:
        if self.records and len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()


class Producer:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes | None]]]] = []
        self.failing = False

    def create_batch(self) -> Batch:
        return Batch(self.capacity)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future:
        self.sent.append((topic, partition, batch.records))
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        if self.failing:
            done.set_exception(ConnectionError("broker gone"))
        else:
            done.set_result(None)
        return done


class Topic:
    def get_topic_name(self) -> str:
        return "app-board-changelog"

    def prepare_key(self, key: Any, serializer: Any) -> tuple[bytes, None]:
        return f'"{key}"'.encode(), None

    def prepare_value(self, value: Any, serializer: Any) -> tuple[Any, None]:
        return value, None


class Table:
    key_serializer = "json"
    value_serializer = "raw"

    def __init__(self) -> None:
        self.changelog_topic = Topic()
        self.data: dict[str, Any] = {}


def test_changelog_records_go_out_in_order_in_batches_per_partition() -> None:
    producer = Producer(capacity=2)
    changelog = BatchedChangelog(Table(), lambda: producer)  # type: ignore[arg-type]
    for n in range(5):
        changelog.send_changelog(1, f"k{n}", f"v{n}".encode())
    changelog.send_changelog(0, "gone", None, value_serializer="raw")
    asyncio.run(changelog.send())
    assert producer.sent == [
        ("app-board-changelog", 0, [(b'"gone"', None)]),
        ("app-board-changelog", 1, [(b'"k0"', b"v0"), (b'"k1"', b"v1")]),
        ("app-board-changelog", 1, [(b'"k2"', b"v2"), (b'"k3"', b"v3")]),
        ("app-board-changelog", 1, [(b'"k4"', b"v4")]),
    ]
    asyncio.run(changelog.send())
    assert len(producer.sent) == 4, "nothing held: nothing sent"


def test_changelog_records_not_delivered_are_sent_with_the_next_commit() -> None:
    producer = Producer(capacity=10)
    changelog = BatchedChangelog(Table(), lambda: producer)  # type: ignore[arg-type]
    changelog.send_changelog(1, "k0", b"v0")
    producer.failing = True
    with pytest.raises(ConnectionError):
        asyncio.run(changelog.send())
    changelog.send_changelog(1, "k1", b"v1")
    producer.failing = False
    producer.sent.clear()
    asyncio.run(changelog.send())
    assert producer.sent == [("app-board-changelog", 1, [(b'"k0"', b"v0"), (b'"k1"', b"v1")])]


def test_a_full_stage_commits_before_its_interval() -> None:
    """A commit record must stay within Kafka's largest message, however much a
    stage writes in one interval."""
    journal = Journal()
    pending = [0]
    committer = Committer(
        journal.flush, journal.write_state, interval_s=3600, full=lambda: pending[0] >= 100
    )
    stream = Stream(journal)

    async def scenario() -> None:
        async with committer.lock:
            pending[0] = 60
            await committer.processed(stream, [1])
            assert journal.steps == []
            pending[0] = 120
            await committer.processed(stream, [2])

    asyncio.run(scenario())
    assert journal.steps == ["flush", "state", "ack 1", "ack 2"]
