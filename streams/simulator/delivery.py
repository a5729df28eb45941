"""Send messages at the chosen speed: real time, N times faster, or as fast as possible.

Pacing maps event time to wall time from the first message on: at speed N,
an hour of events takes 1/N hour. Messages whose moment has passed (the
sender fell behind, or a fault made them late) go at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from streams.simulator.progress import Progress
from streams.simulator.sink import Sink
from streams.simulator.wire import Message


def parse_speed(text: str) -> float | None:
    """'max' -> None (no pacing), 'realtime' -> 1.0, '60' or 'x60' -> 60.0."""
    lowered = text.strip().lower()
    if lowered == "max":
        return None
    if lowered == "realtime":
        return 1.0
    try:
        speed = float(lowered.removeprefix("x"))
    except ValueError:
        raise ValueError(f"expected 'max', 'realtime' or a factor like 60, got {text!r}") from None
    if not speed > 0 or speed == float("inf"):
        raise ValueError(f"the speed factor must be positive, got {text!r}")
    return speed


class Pacer:
    def __init__(
        self,
        speed: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.speed = speed
        self.clock = clock
        self.sleep = sleep
        self.origin: tuple[int, float] | None = None  # (event ms, wall s) of the first message

    def wait(self, at_ms: int) -> None:
        """Block until the wall-clock moment of event time `at_ms`."""
        if self.speed is None:
            return
        if self.origin is None:
            self.origin = (at_ms, self.clock())
            return
        first_ms, first_wall = self.origin
        delay = first_wall + (at_ms - first_ms) / 1000 / self.speed - self.clock()
        if delay > 0:
            self.sleep(delay)


@dataclass(frozen=True, slots=True)
class Delivered:
    messages: int
    events: int


def deliver(
    messages: Iterable[Message],
    sink: Sink,
    pacer: Pacer,
    progress: Progress,
    fraction: Callable[[Message, int], float],
) -> Delivered:
    """Send everything through `sink`; `fraction(message, events so far)` feeds the bar."""
    sent = events = 0
    for message in messages:
        pacer.wait(message.at)
        sink.send(message)
        sent += 1
        events += message.events
        if not sent & 255:
            progress.update(events, fraction(message, events))
    return Delivered(sent, events)
