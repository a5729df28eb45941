"""Just enough terminal control for a full-screen view over SSH: the alternate
screen, a hidden cursor, and single key presses without Enter.

Plain ANSI escape sequences and termios, so any terminal emulator works and
nothing beyond the standard library is needed. Everything is restored on exit.
"""

from __future__ import annotations

import select
import shutil
import termios
import tty
from types import TracebackType
from typing import TextIO

ENTER = "\x1b[?1049h\x1b[?25l"  # alternate screen, hide the cursor
LEAVE = "\x1b[?25h\x1b[?1049l"
HOME = "\x1b[H"
CLEAR_LINE_END = "\x1b[K"
CLEAR_BELOW = "\x1b[J"


class Screen:
    def __init__(self, out: TextIO, keys: TextIO | None) -> None:
        self.out = out
        self.keys = keys if keys is not None and keys.isatty() else None
        self.saved: list[object] | None = None

    def __enter__(self) -> Screen:
        if self.keys is not None:
            self.saved = termios.tcgetattr(self.keys)
            tty.setcbreak(self.keys)
        self.out.write(ENTER)
        self.out.flush()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.out.write(LEAVE)
        self.out.flush()
        if self.keys is not None and self.saved is not None:
            termios.tcsetattr(self.keys, termios.TCSADRAIN, self.saved)

    @staticmethod
    def width() -> int:
        return shutil.get_terminal_size().columns

    def draw(self, text: str) -> None:
        """Repaint in place (no flicker): each line overwrites the old one."""
        body = text.rstrip("\n").replace("\n", CLEAR_LINE_END + "\n")
        self.out.write(HOME + body + CLEAR_LINE_END + "\n" + CLEAR_BELOW)
        self.out.flush()

    def key(self, timeout: float) -> str | None:
        """One key pressed within `timeout` seconds, if any."""
        if self.keys is None:
            return None
        ready, _, _ = select.select([self.keys], [], [], timeout)
        return self.keys.read(1) if ready else None
