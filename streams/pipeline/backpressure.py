"""When ingest stops reading input: backpressure on the internal topics' backlog.

Ingest reads a backlog (a replay, a restart after an outage) far faster than
the stages after it work: without a bound, it runs millions of events ahead of
them. Those events then wait in the internal topics, in Faust's stream buffers
(up to 8,192 messages of up to 1,000 items each per stage) and, with the event
clock, as board buckets ahead of a board clock held back by the slowest stage.
The process's memory then follows the length of the backlog, and glibc keeps
its peak (docs/benchmarks.md, "Memory"). Bounding how many internal items
(events, facts, deltas) wait to be processed bounds all three, whatever the
backlog's length.

The hold starts above `limit` items and ends at half of it, so that the
stages still have work while ingest resumes, and ingest does not flip at every
check. While it holds, ingest takes nothing more and the worker's input
partitions are paused in the Kafka consumer (streams.pipeline.app).
"""

from __future__ import annotations

from collections.abc import Mapping

MEAN_WEIGHT = 0.02
"""Weight of each new message in the moving mean of MessageSizes."""
UNKNOWN_SIZE = 1.0
"""Items counted per message of a topic this worker has sent nothing to yet:
more would hold input for a backlog of clock reports, which carry none."""


class MessageSizes:
    """Items (events, facts, deltas) per internal message, per topic: a moving
    mean over the messages this worker sent. A backlog is known in offsets;
    what it costs is its items, and a message carries one item or a thousand
    (one event forwarded, or a replay's batch)."""

    def __init__(self) -> None:
        self._mean: dict[str, float] = {}

    def sent(self, topic: str, items: int) -> None:
        mean = self._mean.get(topic)
        self._mean[topic] = items if mean is None else mean + MEAN_WEIGHT * (items - mean)

    def of(self, topic: str) -> float:
        return self._mean.get(topic, UNKNOWN_SIZE)


def backlog(
    ends: Mapping[tuple[str, int], int],
    positions: Mapping[tuple[str, int], int],
    sizes: MessageSizes,
) -> tuple[int, int]:
    """Messages written to each (topic, partition) (its log's end) and not
    processed yet (from its position on: the next offset its stage takes),
    and the items they carry by `sizes`' estimate."""
    messages = 0
    items = 0.0
    for tp, end in ends.items():
        waiting = max(0, end - positions[tp])
        messages += waiting
        items += waiting * sizes.of(tp[0])
    return messages, round(items)


class InputHold:
    """Whether ingest holds off reading input, from the internal backlog."""

    def __init__(self, limit: int) -> None:
        if limit < 2:
            raise ValueError(f"limit must be at least 2, got {limit}")
        self.limit = limit
        self.holding = False
        self.waiting: int | None = None
        """The backlog last measured, in items (None: not yet)."""
        self.messages: int | None = None
        """The same in messages."""

    def add(self, items: int) -> bool:
        """Items ingest sent since the last measurement: counted until the next
        one, so that the hold starts within a batch of the limit rather than
        within a measurement interval of it. Returns whether to hold."""
        self.waiting = (self.waiting or 0) + items
        if self.waiting > self.limit:
            self.holding = True
        return self.holding

    def update(self, messages: int, waiting: int) -> bool:
        """The internal backlog now, in messages and items. Returns whether
        to hold."""
        self.messages = messages
        self.waiting = waiting
        if waiting > self.limit:
            self.holding = True
        elif waiting <= self.limit // 2:
            self.holding = False
        return self.holding
