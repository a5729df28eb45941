"""A one-line progress bar with events/s on stderr, for runs long enough to wonder.

Only drawn on a terminal (a log file or a pipe gets nothing), at most a few
times a second, so it costs nothing per event.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

_WIDTH = 28
_EVERY_S = 0.2


class Progress:
    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.clock = clock
        self.began = clock()
        self.drawn_at = float("-inf")

    def update(self, events: int, fraction: float) -> None:
        """`fraction` of the work is done after `events` events."""
        if not self.enabled:
            return
        now = self.clock()
        if now - self.drawn_at < _EVERY_S:
            return
        self.drawn_at = now
        self.stream.write("\r" + self.line(events, fraction, now - self.began))
        self.stream.flush()

    def line(self, events: int, fraction: float, elapsed: float) -> str:
        fraction = min(max(fraction, 0.0), 1.0)
        filled = round(fraction * _WIDTH)
        rate = events / elapsed if elapsed > 0 else 0.0
        bar = "#" * filled + "." * (_WIDTH - filled)
        return f"{self.label} [{bar}] {fraction:4.0%}  {events:,} events  {rate:,.0f} events/s"

    def close(self) -> None:
        """Clear the bar so the summary line that follows starts clean."""
        if self.enabled and self.drawn_at != float("-inf"):
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
