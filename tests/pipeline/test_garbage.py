"""The worker's collector settings: far fewer collections over a large state."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams.pipeline import garbage


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def collections_while_churning_a_state() -> dict[int, int]:
    """Collections per generation while a state of 100,000 entries is kept and
    each entry is replaced twice, as the stages replace an interaction's events."""
    counts = {0: 0, 1: 0, 2: 0}

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            counts[info["generation"]] += 1

    gc.callbacks.append(count)
    try:
        state: dict[int, list[object]] = {}
        for round_ in range(3):
            for key in range(100_000):
                state[key] = [round_, [key], {"k": key}]
    finally:
        gc.callbacks.remove(count)
    return counts


def test_tuned_collector_walks_the_state_far_less_often(restored_collector: None) -> None:
    default = collections_while_churning_a_state()
    garbage.tune()
    tuned = collections_while_churning_a_state()
    assert gc.get_threshold() == (garbage.YOUNG, garbage.MIDDLE, garbage.OLD)
    assert gc.get_freeze_count() > 0
    assert sum(tuned.values()) * 20 < sum(default.values()), (default, tuned)
    assert tuned[1] + tuned[2] < default[1] + default[2], (default, tuned)
