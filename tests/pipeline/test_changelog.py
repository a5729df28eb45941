"""The changelog's records are byte for byte what Faust itself would write, so
that Faust recovers the tables from them and compaction keeps one per key."""

import asyncio

import faust
from hypothesis import given
from hypothesis import strategies as st

from streams.pipeline.changelog import BatchedChangelog
from tests.pipeline.test_committer import Producer
from tests.pipeline.test_table_store import WRITES, traced_growth

app = faust.App("changelog-test", store="memory://")
table = app.Table("state", key_type=str, value_type=bytes, partitions=4)


def faust_record(key: str, value: bytes | None) -> tuple[bytes | None, bytes | None]:
    topic = table.changelog_topic
    serializer = "raw" if value is None else table.value_serializer
    return (
        topic.prepare_key(key, table.key_serializer)[0],
        topic.prepare_value(value, serializer)[0],
    )


@given(st.lists(st.tuples(st.text(), st.one_of(st.none(), st.binary())), max_size=20))
def test_records_are_what_faust_writes(writes: list[tuple[str, bytes | None]]) -> None:
    producer = Producer(capacity=1000)
    changelog = BatchedChangelog(table, lambda: producer)
    for key, value in writes:
        if value is None:
            changelog.send_changelog(2, key, None, value_serializer="raw")
        else:
            changelog.send_changelog(2, key, value)
    asyncio.run(changelog.send())
    sent = [record for _topic, _partition, records in producer.sent for record in records]
    assert sent == [faust_record(key, value) for key, value in writes]


def test_records_waiting_to_be_sent_hold_only_their_own_bytes() -> None:
    """orjson's buffer for a key's JSON is at least 4 KiB; a commit's records
    wait in memory until Kafka has them (streams.pipeline.right_size)."""
    changelog = BatchedChangelog(table, lambda: None)
    values = [b"v" * 40 for _ in range(WRITES)]

    def hold_all() -> None:
        for n, value in enumerate(values):
            changelog.send_changelog(n % 4, f"interaction-{n}", value)

    held, _ = traced_growth(hold_all)
    assert held < WRITES * 512, f"{held / WRITES:.0f} bytes a record"
