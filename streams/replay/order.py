"""Event-time order for a replay, whatever order the file was written in.

Exports are rarely sorted by event time (an audit log is sorted by record,
then by update), and the pipeline's lateness only forgives so much; a replay
sends in event-time order so that it yields what live traffic would have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streams.simulator.wire import Message


@dataclass(frozen=True, slots=True)
class Ordered:
    messages: list[Message]
    reordered: int  # messages that came after a later one in the input


def in_event_time_order(messages: Sequence[Message]) -> Ordered:
    """Sorted by event time; equal times keep their input order (the sort is stable)."""
    reordered = 0
    latest: int | None = None
    for message in messages:
        if latest is not None and message.at < latest:
            reordered += 1
        else:
            latest = message.at
    return Ordered(sorted(messages, key=lambda message: message.at), reordered)
