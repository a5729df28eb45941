"""The full-screen plumbing of `top`: repaint in place, restore the terminal, window keys."""

import io

from streams.live.cli import next_window
from streams.live.terminal import CLEAR_BELOW, CLEAR_LINE_END, ENTER, HOME, LEAVE, Screen


def test_the_screen_is_repainted_in_place_and_restored():
    out = io.StringIO()
    with Screen(out, keys=io.StringIO()) as screen:  # keys that are not a terminal
        screen.draw("title\nrow 1\n")
        assert screen.key(0) is None
    assert out.getvalue() == (
        ENTER
        + HOME
        + "title"
        + CLEAR_LINE_END
        + "\nrow 1"
        + CLEAR_LINE_END
        + "\n"
        + CLEAR_BELOW
        + LEAVE
    )


def test_w_cycles_through_the_windows_present():
    windows = ["5m", "1h", "24h"]
    assert next_window(windows, "1h") == "24h"
    assert next_window(windows, "24h") == "5m"
    assert next_window(windows, "7d") == "5m"
    assert next_window([], "1h") == "1h"
