"""Adopting a board partition replaces what memory held of its keys with the
changelog's state, changes not yet flushed included. (The agents adopt a
partition before its first message, `app._own`: a message applied before
would be lost here.)"""

from __future__ import annotations

from streams.pipeline.stages import BoardStage
from tests.pipeline.harness import DictStore
from tests.pipeline.test_redelivery import SETTINGS, T0, deltas, started

HOUR_MS = 3_600_000


def test_adoption_drops_changes_to_the_state_it_replaces() -> None:
    first = BoardStage(SETTINGS, DictStore())
    partition = first.partition_of("call")
    for offset in range(3):
        first.process(deltas("i0", offset, 0), T0, partition)
    first.flush()

    taking_over = BoardStage(SETTINGS, first.store.replayed())
    later = deltas("i1", 0, 0)
    later["d"][0][3][0][3] = T0 + 2 * HOUR_MS
    taking_over.process(later, T0, partition)
    taking_over.adopt(partition)
    taking_over.flush()

    assert started(taking_over) == 3
    assert taking_over.store.restore(partition)["applied"] == {"i0": [2, 0]}
