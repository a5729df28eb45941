"""What a worker holds for a closed interaction and for a customer: the
state's own JSON, not the objects decoded from it (Store.put_bytes). Decoded,
they took four to seven times their JSON, spread over the heap for as long as
they were kept (docs/benchmarks.md, "State held as its bytes")."""

from __future__ import annotations

import gc
import tracemalloc

import orjson
import pytest

from streams.core import interaction
from streams.pipeline.table_store import TableStore
from streams.pipeline.wire import event_from_wire
from tests.pipeline.harness import LocalPipeline
from tests.pipeline.test_expiry import SETTINGS, feed
from tests.pipeline.test_table_store import FakeTable, recovered

KEY_OVERHEAD = 160
"""Bytes a key costs whatever its value: the key's string and its dict slot."""


def last_records(table: FakeTable) -> dict[str, bytes]:
    """The changelog's last record of each key the table holds."""
    partitions = range(SETTINGS.internal_partitions)
    return {key: wire for p in partitions for key, wire in recovered(table.log, p).data.items()}


def closed(wire: bytes) -> bool:
    return interaction.last_activity([event_from_wire(w) for w in orjson.loads(wire)])[1]


def held_bytes(table: FakeTable, keys: list[str]) -> int:
    """Bytes the table's values of `keys` hold: what dropping them frees."""
    table.log.clear()
    gc.collect()
    with_values = tracemalloc.get_traced_memory()[0]
    for key in keys:
        del table.data[key]
    gc.collect()
    return with_values - tracemalloc.get_traced_memory()[0] - len(keys) * KEY_OVERHEAD


@pytest.mark.parametrize("stage", ["interactions", "customers"])
def test_state_kept_for_long_takes_about_its_json(stage: str) -> None:
    """Every customer held, and every closed interaction: the interactions
    still open are held decoded, as their next event reads them."""
    pipe = LocalPipeline(SETTINGS)
    table = FakeTable()
    store = getattr(pipe, stage).store = TableStore(table)
    messages = feed(2_000)
    tracemalloc.start()
    try:
        for first in range(0, len(messages), 20):
            chunk = messages[first : first + 20]
            pipe.send([message for _, message in chunk], chunk[-1][0])
            store.commit()
        records = last_records(table)
        if stage == "interactions":
            records = {key: wire for key, wire in records.items() if closed(wire)}
        assert len(records) > 30, "state is held"
        json_bytes = sum(map(len, records.values()))
        held = held_bytes(table, list(records))
    finally:
        tracemalloc.stop()
    assert held < 1.3 * json_bytes, f"{held} bytes held for {json_bytes} bytes of JSON"
