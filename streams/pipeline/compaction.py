"""Fresh copies of the state's long-lived values, so that the memory a
backlog freed around them can go back to the OS.

jemalloc (streams.allocator) serves a small object from a slab of regions of
its size, taking a free region of the oldest slab that has one, and hands a
slab back only once every region in it is free. During a backlog the state's
values (a customer's history, a closed interaction) are allocated among
millions of per-message objects that are freed soon after, and many slabs end
up holding a value or two each: a worker's heap held 60-70 MiB more resident
pages after 10M events than after 2M for the same state, in freed regions of
slabs that a long-lived object kept (docs/benchmarks.md, "State compaction").
A copy made now fills a hole of an older slab; once the original is dropped,
the slabs it leaves empty go back. Only with the thread's cache off, though
(`JemallocStats.thread_cache_off`): the cache hands out the regions its
thread freed last, and each copy would take the place of the original
dropped just before it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any


def copied(value: Any) -> Any:
    """An equal value in new memory: bytes are copied, a list is a new list
    of the same items; anything else is returned as it is."""
    if type(value) is bytes:
        return bytes(memoryview(value))
    if type(value) is list:
        return list(value)
    return value


PER_STEP = 5000
"""Values a worker copies per stage and second: about 5 ms of the event loop;
a round over 200,000 customers takes 40 s."""


class Compaction:
    """Copies the values of a mapping a slice at a time, round after round,
    so that no step holds the event loop for long: a whole pass over 157,000
    customers' histories took 0.18 s."""

    def __init__(self, per_step: int) -> None:
        if per_step <= 0:
            raise ValueError(f"per_step must be positive, got {per_step}")
        self.per_step = per_step
        self._round: list[str] = []
        """The keys this round has still to copy (a key deleted since is skipped)."""

    def step(self, data: MutableMapping[str, Any]) -> int:
        """Copies the values of the next `per_step` keys of `data`, starting a
        round over every key it holds once the last one is done; returns how
        many it copied."""
        if not self._round:
            self._round = list(data)
        keys = self._round[-self.per_step :]
        del self._round[-self.per_step :]
        copies = 0
        for key in keys:
            value = data.get(key)
            if value is not None:
                data[key] = copied(value)
                copies += 1
        return copies
