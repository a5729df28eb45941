"""A crash can cut a changelog anywhere: whatever prefix survives, the store
restores the state and mark of one whole commit, never a mix of two."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, MutableMapping
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.pipeline.table_store import MARK, TableStore


class FakeTable:
    """A table's dict and the changelog records sent for it, in order."""

    def __init__(self) -> None:
        self.data: MutableMapping[str, Any] = {}
        self.log: list[tuple[int | None, str, Any]] = []

    def send_changelog(
        self, partition: int | None, key: Any, value: Any, value_serializer: Any = None
    ) -> None:
        self.log.append((partition, key, value))


def recovered(log: list[tuple[int | None, str, Any]], partition: int) -> FakeTable:
    """What Faust recovery puts in the table from a (cut) changelog partition."""
    table = FakeTable()
    for p, key, value in log:
        if p != partition:
            continue
        if value is None:
            table.data.pop(key, None)
        else:
            table.data[key] = value
    return table


keys = st.sampled_from([f"k{i}" for i in range(6)])
writes = st.dictionaries(keys, st.one_of(st.none(), st.integers(0, 99)), max_size=5)
commits = st.lists(st.tuples(writes, st.integers(0, 1)), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(commits, st.sampled_from([1, 4, 1 << 20]))
def test_every_cut_restores_one_whole_commit(
    plan: list[tuple[dict[str, int | None], int]], part_bytes: int
) -> None:
    """With commits in one record, and in parts (a part per write or two)."""
    table = FakeTable()
    store = TableStore(table, part_bytes)
    states: list[tuple[dict[str, bytes], Any]] = [({}, None)]
    state: dict[str, bytes] = {}
    for number, (changes, partition) in enumerate(plan):
        for key, value in changes.items():
            wire = None if value is None else str(value).encode()
            if wire is None:
                store.delete(partition, key)
            else:
                store.put(partition, key, value, wire)
            if partition == 0 and wire is None:
                state.pop(key, None)
            elif partition == 0 and wire is not None:
                state[key] = wire
        store.commit({partition: {"commit": number}})
        if partition == 0:
            states.append((dict(state), {"commit": number}))
    for cut in range(len(table.log) + 1):
        after = recovered(table.log[:cut], 0)
        mark = TableStore(after).restore(0)
        data = {k: v for k, v in after.data.items() if not k.startswith(MARK)}
        assert (data, mark) in states, (cut, data, mark)


def test_a_commit_writes_only_the_last_value_of_a_key() -> None:
    table = FakeTable()
    store = TableStore(table)
    store.put(0, "a", 1, b"1")
    store.put(0, "a", 2, b"2")
    store.delete(1, "b")
    store.commit()
    assert table.log == [(0, "a", b"2"), (1, "b", None)]
    assert table.data == {"a": 2}


def test_scan_hides_the_commit_records() -> None:
    table = FakeTable()
    store = TableStore(table)
    store.put(3, "a", 1, b"1")
    store.commit({3: {"x": 1}})
    assert list(store.scan()) == ["a"]
    assert TableStore(recovered(table.log, 3)).restore(3) == {"x": 1}


def test_largest_commit_is_the_biggest_partitions_pending_bytes() -> None:
    store = TableStore(FakeTable())
    assert store.largest_commit() == 0
    store.put(0, "a", 1, b"x" * 10)
    store.put(0, "a", 2, b"x" * 4)  # replaces the first write
    store.put(0, "b", 3, b"x" * 3)
    store.put(1, "c", 4, b"x" * 5)
    store.delete(1, "d")
    assert store.largest_commit() == 7
    store.commit()
    assert store.largest_commit() == 0


def test_parts_of_replaced_commits_are_deleted_before_and_after_a_restart() -> None:
    table = FakeTable()
    store = TableStore(table, part_bytes=1)
    for n in range(3):
        store.put(0, "a", n, str(n).encode())
        store.put(0, "b", n, str(n).encode())
        store.commit({0: n})
    parts = [key for key in table.data if key.startswith(f"{MARK}0|")]
    assert len(parts) == 2, "the last commit's two parts only"
    after_crash = recovered(table.log, 0)
    restarted = TableStore(after_crash, part_bytes=1)
    assert restarted.restore(0) == 2
    restarted.put(0, "a", 9, b"9")
    restarted.commit({0: 3})
    left = recovered([*table.log, *after_crash.log], 0)
    assert [key for key in left.data if key.startswith(f"{MARK}0|")] == []
    assert TableStore(left).restore(0) == 3 and left.data["a"] == b"9" and left.data["b"] == b"2"


WRITES = 2_000


def traced_growth(work: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes `work` leaves allocated, and what it returned (kept alive)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = work()
        return tracemalloc.get_traced_memory()[0] - before, result
    finally:
        tracemalloc.stop()


def test_writes_waiting_for_the_commit_hold_only_their_own_bytes() -> None:
    """A board bucket's JSON is a few hundred bytes; orjson's buffer for it is at
    least 4 KiB. A stage holds a commit's writes for up to a second, and in a
    replay that was about half of the worker's peak memory (streams.pipeline.right_size)."""
    store = TableStore(FakeTable())

    def put_all() -> None:
        for n in range(WRITES):
            store.put(0, f"bucket-{n}", n, orjson.dumps({"n": n, "sum": n * 1.5}))

    held, _ = traced_growth(put_all)
    assert held < WRITES * 512, f"{held / WRITES:.0f} bytes a write"


def test_a_restored_commit_holds_only_its_own_bytes() -> None:
    """A commit cut off by a crash is completed from its record at restart; the
    writes it puts back stay in the table until overwritten."""
    table = FakeTable()
    store = TableStore(table)
    for n in range(WRITES):
        store.put(0, f"k{n}", n, orjson.dumps({"n": n}))
    store.commit({0: "mark"})
    record_only = recovered(table.log[:1], 0)

    held, mark = traced_growth(lambda: TableStore(record_only).restore(0))
    assert mark == "mark" and len(record_only.data) == WRITES + 1
    assert held < WRITES * 512, f"{held / WRITES:.0f} bytes a write"


def test_a_value_put_as_bytes_is_held_once_at_its_own_size() -> None:
    """The table's value and the write waiting for the commit are one copy of
    the JSON, not orjson's buffer (streams.pipeline.right_size)."""
    table = FakeTable()
    store = TableStore(table)

    def put_all() -> None:
        for n in range(WRITES):
            store.put_bytes(0, f"customer-{n}", orjson.dumps({"c": [[n, "chat"]], "f": {}}))

    held, _ = traced_growth(put_all)
    assert held < WRITES * 512, f"{held / WRITES:.0f} bytes a write"
    assert all(table.data[key] is wire for key, wire in store.pending[0].items())
