"""A blocking client call that never returns costs its caller the deadline,
not the stage, and not the worker's exit (streams.pipeline.blocking)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import pytest

from streams.pipeline.blocking import call_with_deadline


def test_the_answer_and_the_error_of_the_call_come_back() -> None:
    def fails() -> None:
        raise ValueError("no such partition")

    assert asyncio.run(call_with_deadline(5, sum, [1, 2, 3])) == 6
    with pytest.raises(ValueError, match="no such partition"):
        asyncio.run(call_with_deadline(5, fails))


def test_a_call_that_never_returns_is_given_up_and_the_loop_keeps_running() -> None:
    never = threading.Event()
    ticks = 0

    async def main() -> None:
        nonlocal ticks

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.ensure_future(tick())
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"no answer within 0\.3 s"):
            await call_with_deadline(0.3, never.wait)
        assert 0.3 <= time.monotonic() - started < 2
        ticker.cancel()

    try:
        asyncio.run(main())
    finally:
        never.set()
    assert ticks >= 10


def test_a_call_that_never_returns_does_not_hold_the_process_at_exit() -> None:
    """`asyncio.to_thread` would: the interpreter joins its threads at exit."""
    program = (
        "import asyncio, threading\n"
        "from streams.pipeline.blocking import call_with_deadline\n"
        "async def main():\n"
        "    try:\n"
        "        await call_with_deadline(0.2, threading.Event().wait)\n"
        "    except TimeoutError:\n"
        "        print('given up', flush=True)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=30
    )
    assert (done.returncode, done.stdout) == (0, "given up\n"), done.stderr
