"""The windowed KPI state of a set of keys: every window, the settled totals,
the live queue gauges, and the records and roll-ups built from them.

One board holds the keys of the channels one worker owns. It knows nothing of
Kafka: the shell feeds it contributions and clock ticks, reads back which
buckets changed (to write them to the changelog) and asks it for records.

Settled totals: a bucket older than the allowed lateness can no longer change,
so it is folded into a per-key cumulative aggregate. Those totals only grow,
which is what Prometheus counters need.

Each channel has its own clock. A worker that takes over a channel (its
partition moved here) still has that channel's deltas to read, from where the
previous owner stopped; carried to the clock of the channels it read all along,
it would settle buckets those deltas still change. It resumes the channel at
the clock the previous owner committed (`resume`): the windows are served from
there at once, and the settling ring waits for the new owner's own clock, as
the previous owner's would have, so that a correction in the backlog still
finds its bucket.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streams.config import ALL, NO_NETWORK, SlaTable
from streams.core.aggregate import CODE_NAMES, Aggregate
from streams.core.contribution import Key
from streams.core.record import Live, build, record_key
from streams.core.window import RollingWindow

SETTLE = 0
"""Ring id of the settling ring (windows use their span in ms as id)."""

BucketId = tuple[Key, int, int]
"""(key, ring id, bucket index)."""


@dataclass(slots=True)
class KeyState:
    rings: dict[int, RollingWindow]
    settled: Aggregate = field(default_factory=Aggregate)

    def has_data(self) -> bool:
        """False for a key whose every contribution was retracted (a contact first
        seen under queue `unknown` until its start arrived): it gets no records."""
        if not self.settled.is_empty():
            return True
        return any(
            not bucket.is_empty()
            for ring in self.rings.values()
            for bucket in ring.buckets.values()
        )


class Board:
    def __init__(
        self,
        windows_ms: Iterable[int],
        buckets: int,
        lateness_ms: int,
        sla: SlaTable,
        dropped: Counter[tuple[str, str]] | None = None,
    ) -> None:
        self.windows_ms = tuple(sorted(windows_ms))
        self.buckets = buckets
        self.sla = sla
        step = min(span // buckets for span in self.windows_ms)
        # Keep a bucket in the settling ring until it is older than the lateness
        # plus a margin for the time a contribution spends between stages.
        spans = -(-(lateness_ms + 120_000) // step)
        self.settle_step = step
        self.settle_span = spans * step
        self.keys: dict[Key, KeyState] = {}
        self.live: dict[tuple[int, int], dict[Key, Live]] = {}
        self.clocks: dict[str, int] = {}
        """Per channel: the time its windows were last moved to."""
        self.resumed: set[str] = set()
        """Channels whose windows stand at a clock they were resumed at, and
        whose settling rings wait for a clock of this board's (`resume`)."""
        self.dirty: set[BucketId] = set()
        self.removed: set[BucketId] = set()
        self.settled_dirty: set[Key] = set()
        self.dropped: Counter[tuple[str, str]] = dropped if dropped is not None else Counter()
        """Retractions that came after their bucket had settled, by (channel,
        what they retracted): the settled totals still include what they took back."""

    def _rings(self) -> dict[int, RollingWindow]:
        rings = {span: RollingWindow(span, span // self.buckets) for span in self.windows_ms}
        rings[SETTLE] = RollingWindow(self.settle_span, self.settle_step)
        return rings

    def _state(self, key: Key) -> KeyState:
        state = self.keys.get(key)
        if state is None:
            state = self.keys[key] = KeyState(self._rings())
            self._catch_up(key, state)
        return state

    def _catch_up(self, key: Key, state: KeyState) -> None:
        """Bring a key new to the board to where its channel stands."""
        clock = self.clocks.get(key[0])
        if clock is not None:
            self._advance_key(key, state, clock, settle=key[0] not in self.resumed)

    def _advance_key(
        self, key: Key, state: KeyState, clock_ms: int, *, windows: bool = True, settle: bool = True
    ) -> None:
        for ring_id, ring in state.rings.items():
            if not (settle if ring_id == SETTLE else windows):
                continue
            for index, bucket in ring.advance(clock_ms):
                self.removed.add((key, ring_id, index))
                self.dirty.discard((key, ring_id, index))
                if ring_id == SETTLE:
                    state.settled.merge(bucket)
                    self.settled_dirty.add(key)

    def apply(self, key: Key, ts: int, code: int, value: int, weight: int) -> None:
        rings = self._state(key).rings
        for ring_id, ring in rings.items():
            index = ring.add(ts, code, value, weight)
            if index is not None:
                self.dirty.add((key, ring_id, index))
            elif ring_id == SETTLE:
                # Later than the settling margin: count it straight into the
                # settled totals rather than lose it. Retractions this late are
                # dropped so that the totals never go down, and counted.
                if weight > 0:
                    self.keys[key].settled.apply(code, value, weight)
                    self.settled_dirty.add(key)
                else:
                    self.dropped[(key[0], CODE_NAMES[code])] -= weight

    @property
    def clock_ms(self) -> int | None:
        """The clock of the channel furthest behind: every bucket before it is
        final; None before any channel has a clock."""
        return min(self.clocks.values(), default=None)

    def advance(self, clock_ms: int, channels: Iterable[str]) -> None:
        """Move the windows of `channels` to `clock_ms`; never backwards. The
        settling ring of a channel resumed ahead of `clock_ms` moves to it alone."""
        moved, settling = set(), set()
        for channel in channels:
            current = self.clocks.get(channel)
            if current is None or clock_ms > current:
                self.clocks[channel] = clock_ms
                moved.add(channel)
                self.resumed.discard(channel)
            elif channel in self.resumed:
                settling.add(channel)
                if clock_ms == current:
                    self.resumed.discard(channel)
        if moved or settling:
            for key, state in self.keys.items():
                if key[0] in moved:
                    self._advance_key(key, state, clock_ms)
                elif key[0] in settling:
                    self._advance_key(key, state, clock_ms, windows=False)

    def resume(self, clock_ms: int, channels: Iterable[str]) -> None:
        """Serve `channels`, restored from the changelog, at the clock their
        state was committed at, before this board has a clock of its own for
        them. Only their windows move there: their settling rings wait for this
        board's clock (`advance`), as corrections still to come may belong to
        buckets the previous owner's clock had settled."""
        fresh = {c for c in channels if c not in self.clocks}
        for channel in fresh:
            self.clocks[channel] = clock_ms
        self.resumed |= fresh
        for key, state in self.keys.items():
            if key[0] in fresh:
                self._advance_key(key, state, clock_ms, settle=False)

    def set_live(self, source: tuple[int, int], gauges: dict[Key, Live]) -> None:
        """Replace the queue gauges last reported by one source: an
        interactions partition, and the board partition it reports to."""
        self.live[source] = gauges

    def restore_key(
        self, key: Key, buckets: Iterable[tuple[int, int, Aggregate]], settled: Aggregate | None
    ) -> None:
        """Put back a key read from the changelog: its buckets (ring id, index,
        aggregate) and settled totals. Buckets of rings no longer configured
        are dropped. Changes not yet taken for the key's previous state are
        dropped too: the restored state is what the changelog holds."""
        self.dirty = {b for b in self.dirty if b[0] != key}
        self.removed = {b for b in self.removed if b[0] != key}
        self.settled_dirty.discard(key)
        state = KeyState(self._rings(), settled if settled is not None else Aggregate())
        for ring_id, index, bucket in buckets:
            ring = state.rings.get(ring_id)
            if ring is not None:
                ring.restore(index, bucket)
            else:
                self.removed.add((key, ring_id, index))
        self.keys[key] = state
        self._catch_up(key, state)

    def bucket(self, bucket_id: BucketId) -> Aggregate:
        key, ring_id, index = bucket_id
        return self.keys[key].rings[ring_id].buckets[index]

    def take_changes(self) -> tuple[set[BucketId], set[BucketId], set[Key]]:
        """(changed buckets, removed buckets, keys whose settled totals changed)
        since the last call: what the shell writes to the changelog."""
        changes = (self.dirty, self.removed, self.settled_dirty)
        self.dirty, self.removed, self.settled_dirty = set(), set(), set()
        return changes

    def forget_channel(self, channel: str) -> None:
        """Drop every key of a channel, and its clock (its partition moved to
        another worker)."""
        self.clocks.pop(channel, None)
        self.resumed.discard(channel)
        for key in [k for k in self.keys if k[0] == channel]:
            del self.keys[key]
        self.dirty = {b for b in self.dirty if b[0][0] != channel}
        self.removed = {b for b in self.removed if b[0][0] != channel}
        self.settled_dirty = {k for k in self.settled_dirty if k[0] != channel}

    # --- reading -------------------------------------------------------------

    def live_by_key(self) -> dict[Key, Live]:
        total: dict[Key, Live] = {}
        for gauges in self.live.values():
            for key, live in gauges.items():
                total[key] = total[key].plus(live) if key in total else live
        return total

    def settled(self) -> Iterator[tuple[Key, Aggregate]]:
        """Settled totals of the keys that have any (a key whose contributions
        were all retracted before they settled has none: no series)."""
        for key, state in self.keys.items():
            if not state.settled.is_empty():
                yield key, state.settled

    def records(self, window_labels: dict[int, str]) -> list[dict[str, Any]]:
        """One record per key and window, plus the roll-ups, at each channel's
        clock (none for a channel without one yet)."""
        live = self.live_by_key()
        leaves = {
            key
            for key in {key for key, state in self.keys.items() if state.has_data()} | set(live)
            if key[0] in self.clocks
        }
        out: list[dict[str, Any]] = []
        for span in self.windows_ms:
            step = span // self.buckets
            groups: dict[Key, tuple[Aggregate, Live]] = {}
            for key in leaves:
                state = self.keys.get(key)
                agg = state.rings[span].total if state else Aggregate()
                key_live = live.get(key, Live())
                for group in _rollups(key):
                    if group in groups:
                        g_agg, g_live = groups[group]
                        g_agg.merge(agg)
                        groups[group] = (g_agg, g_live.plus(key_live))
                    else:
                        groups[group] = (agg.copy(), key_live)
            for (channel, queue, network), (agg, key_live) in groups.items():
                clock = self.clocks[channel]
                hi = clock // step
                out.append(
                    build(
                        channel=channel,
                        queue=queue,
                        network=network,
                        window=window_labels[span],
                        bounds_ms=((hi - self.buckets + 1) * step, (hi + 1) * step),
                        agg=agg,
                        live=key_live,
                        clock_ms=clock,
                        targets=self.sla.targets(channel, queue, network),
                    )
                )
        return out


def _rollups(key: Key) -> tuple[Key, ...]:
    """The key itself and every roll-up it belongs to."""
    channel, queue, network = key
    if network == NO_NETWORK:
        return key, (channel, ALL, NO_NETWORK)
    return key, (channel, ALL, network), (channel, queue, ALL), (channel, ALL, ALL)


def key_of_record(record: dict[str, Any]) -> str:
    network = record["network"] if record["network"] is not None else NO_NETWORK
    return record_key(record["channel"], record["queue"], network, record["window"])
