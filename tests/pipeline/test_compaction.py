"""State compaction (streams.pipeline.compaction): every value is copied into
new memory, round after round, a slice per step, with the state unchanged;
and on jemalloc, the pages a fragmented state kept go back."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.allocator import worker_environment
from streams.pipeline.compaction import Compaction, copied
from tests.pipeline.jemalloc import needs_jemalloc

values = st.one_of(
    st.binary(min_size=2, max_size=600),
    st.lists(st.integers(), max_size=5),
    st.integers(),
    st.none(),
)


@given(st.binary(min_size=2, max_size=5000))
def test_bytes_are_copied_into_new_memory(value: bytes) -> None:
    # Shorter bytes are CPython's shared singletons: nothing to move.
    copy = copied(value)
    assert copy == value
    assert copy is not value


def test_a_list_is_new_and_holds_the_same_items() -> None:
    items = [object(), object()]
    copy = copied(items)
    assert copy == items and copy is not items
    assert all(a is b for a, b in zip(copy, items, strict=True))


def test_other_values_are_left_as_they_are() -> None:
    value = {"a": 1}
    assert copied(value) is value


@given(st.dictionaries(st.text(max_size=8), st.binary(min_size=2, max_size=50)), st.integers(1, 7))
def test_a_round_copies_every_value_once_and_changes_nothing(
    data: dict[str, bytes], per_step: int
) -> None:
    before = dict(data)
    compaction = Compaction(per_step)
    steps = -(-len(data) // per_step)
    copies = [compaction.step(data) for _ in range(steps)]
    assert data == before
    assert sum(copies) == len(data)
    assert all(n <= per_step for n in copies)
    assert all(data[key] is not before[key] for key in data)


def test_keys_deleted_in_a_round_are_skipped_and_new_ones_wait_for_the_next() -> None:
    data = {f"k{i}": f"value {i}".encode() for i in range(10)}
    compaction = Compaction(4)
    assert compaction.step(data) == 4
    del data["k0"]
    data["new"] = b"added later"
    added = data["new"]
    assert compaction.step(data) == 4
    assert compaction.step(data) == 1  # the round's last key, k0, is gone
    assert data["new"] is added
    assert compaction.step(data) == 4  # the next round has every key held now
    assert sum(compaction.step(data) for _ in range(2)) == 6
    assert data["new"] is not added


def test_a_step_must_copy_something() -> None:
    with pytest.raises(ValueError, match="per_step"):
        Compaction(0)


PROBE = """
import ctypes
import orjson
from streams.pipeline.compaction import Compaction
from streams.pipeline.heap import JemallocStats

mallctl = ctypes.CDLL(None).mallctl
heap = JemallocStats()


def resident() -> int:
    mallctl(b"thread.tcache.flush", None, None, None, 0)
    mallctl(b"arena.4096.purge", None, None, None, 0)
    return heap.read().resident


def rounds(state: dict, cache_off: bool) -> int:
    compaction = Compaction(5000)
    for _ in range(2 * len(state) // 5000):
        if cache_off:
            with heap.thread_cache_off():
                compaction.step(state)
        else:
            compaction.step(state)
    return resident()


# A backlog in small: each value kept is allocated among nine that go.
state, passing = {}, []
for i in range(200_000):
    passing.extend(b"%d,%d," % (i, j) + b"x" * 150 for j in range(9))
    state[f"customer-{i}"] = b"%d," % i + b"y" * 150
passing.clear()
before = resident()
cached = rounds(state, cache_off=False)
after = rounds(state, cache_off=True)
print(orjson.dumps([before, cached, after, heap.read().allocated]).decode())
"""


@needs_jemalloc
def test_on_jemalloc_rounds_without_the_thread_cache_give_back_what_a_backlog_left() -> None:
    env, warning = worker_environment(dict(os.environ), "jemalloc")
    assert warning is None
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, check=True, text=True
    )
    before, cached, after, live = orjson.loads(result.stdout)
    # 200,000 values of ~170 bytes, in slabs a tenth full: the copies take the
    # regions freed last when the thread cache serves them, the fullest slabs'
    # with it off.
    assert cached > before * 0.8
    assert after < before / 3
    assert after < 2 * live
