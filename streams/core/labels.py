"""Caps on the label values that event content can create.

Queue and network names come straight from the events, and each distinct
(channel, queue, network) becomes board state, a record per window, Redis keys
and Prometheus series. A producer with a bug (or random names) would grow all
of them without bound, so names pass through a `LabelCap` first.

Per channel and dimension (queue, network) a name keeps its own key if it is
allow-listed (configured, or named in the SLA targets), or if it is among the
first `max_*` other names that arrived; every later name folds into the bucket
`other` (configurable). A name once admitted is never evicted, so a retraction
of an earlier contribution lands on the same key as the contribution did. The
admitted names are the names of the board's keys, so a restarted worker gets
the same decisions back from its recovered state (`admit_existing`).

Reserved values pass through untouched: `unknown` (no start seen), `-` (no
network) and `*` (roll-ups).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from streams.config import ALL, NO_NETWORK, UNKNOWN, LabelLimits, SlaTable
from streams.core.contribution import Key

QUEUE: Final = "queue"
NETWORK: Final = "network"
_RESERVED: Final = frozenset({ALL, NO_NETWORK, UNKNOWN})
_INVERSE_POWERS: Final = tuple(2.0**-rank for rank in range(65))


class DistinctCount:
    """HyperLogLog estimate of the number of distinct names seen: a fixed 4 KiB,
    however many names a flood brings (standard error about 1.6 %; exact-ish
    for small counts, where it falls back to linear counting)."""

    P: Final = 12
    M: Final = 1 << P

    def __init__(self) -> None:
        self.registers = bytearray(self.M)

    def add(self, name: str) -> None:
        h = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")
        index = h >> (64 - self.P)
        rest = h & ((1 << (64 - self.P)) - 1)
        rank = (64 - self.P) - rest.bit_length() + 1
        if rank > self.registers[index]:
            self.registers[index] = rank

    def estimate(self) -> int:
        m = self.M
        zeros = self.registers.count(0)
        if zeros == m:
            return 0
        raw = 0.7213 / (1 + 1.079 / m) * m * m / sum(_INVERSE_POWERS[r] for r in self.registers)
        if raw <= 2.5 * m:
            return round(m * math.log(m / zeros)) if zeros else round(raw)
        return round(raw)


@dataclass(slots=True)
class _Dimension:
    """The names of one channel's queues (or networks) and what was folded."""

    allowed: frozenset[str]
    limit: int
    other: str
    kept: set[str] = field(default_factory=set)
    admitted: int = 0
    """Names kept by arrival (not allow-listed): what `limit` caps."""
    folded: DistinctCount = field(default_factory=DistinctCount)

    def fold(self, name: str) -> str:
        if name in self.kept or name in _RESERVED:
            return name
        if name != self.other:
            if name in self.allowed:
                self.kept.add(name)
                return name
            if self.admitted < self.limit:
                self.kept.add(name)
                self.admitted += 1
                return name
        self.folded.add(name)
        return self.other

    def admit(self, name: str) -> None:
        """Keep a name found in recovered state, even beyond the limit (the limit
        may have been lowered since): its contributions are under that key."""
        if name in self.kept or name in _RESERVED or name == self.other:
            return
        self.kept.add(name)
        if name not in self.allowed:
            self.admitted += 1


@dataclass(frozen=True, slots=True)
class CapReport:
    channel: str
    label: str
    """`queue` or `network`."""
    kept: int
    """Names with their own key."""
    folded: int
    """Distinct names folded into the bucket (estimate)."""


class LabelCap:
    """Maps a key to the key it is counted under; see the module docstring."""

    def __init__(self, limits: LabelLimits, sla: SlaTable) -> None:
        self.limits = limits
        self.other = limits.other
        self._sla_queues: dict[str, frozenset[str]] = {}
        for channel, queue in sla.queues:
            self._sla_queues[channel] = self._sla_queues.get(channel, frozenset()) | {queue}
        self._allowed_networks = limits.networks | frozenset(sla.networks)
        self.queues: dict[str, _Dimension] = {}
        self.networks: dict[str, _Dimension] = {}

    def _queues(self, channel: str) -> _Dimension:
        dim = self.queues.get(channel)
        if dim is None:
            allowed = self.limits.queues | self._sla_queues.get(channel, frozenset())
            dim = self.queues[channel] = _Dimension(allowed, self.limits.max_queues, self.other)
        return dim

    def _networks(self, channel: str) -> _Dimension:
        dim = self.networks.get(channel)
        if dim is None:
            dim = self.networks[channel] = _Dimension(
                self._allowed_networks, self.limits.max_networks, self.other
            )
        return dim

    def key(self, key: Key) -> Key:
        """The capped key; admits the names if there is room."""
        channel, queue, network = key
        capped_queue = self._queues(channel).fold(queue)
        capped_network = network if network == NO_NETWORK else self._networks(channel).fold(network)
        if capped_queue == queue and capped_network == network:
            return key
        return channel, capped_queue, capped_network

    def channels(self) -> set[str]:
        """Channels with names known."""
        return set(self.queues) | set(self.networks)

    def admit_existing(self, keys: Iterable[Key], channels: Iterable[str] = ()) -> None:
        """Take over `channels` (forgetting what was known of them) and admit the
        names of `keys`, the board keys recovered from the changelog."""
        for channel in channels:
            self.queues.pop(channel, None)
            self.networks.pop(channel, None)
        for channel, queue, network in keys:
            self._queues(channel).admit(queue)
            if network != NO_NETWORK:
                self._networks(channel).admit(network)

    def report(self, channels: Iterable[str]) -> Iterator[CapReport]:
        """Per channel of `channels` (those this worker holds) and dimension."""
        for channel in sorted(set(channels)):
            for label, dims in ((QUEUE, self.queues), (NETWORK, self.networks)):
                dim = dims.get(channel)
                if dim is not None:
                    yield CapReport(channel, label, len(dim.kept), dim.folded.estimate())
