"""Blocking client calls awaited with a deadline of our own.

kafka-python 3.0 waits for its IO thread's answer without a timeout
(dpkp/kafka-python#3121); twice, in CI, an admin call never returned, and the
stage awaiting it held its clocks, and then the worker's stop (Faust waits
for the stage's batch).
`asyncio.to_thread` cannot help: its threads cannot be abandoned, and the
interpreter joins them at exit. Here each call gets a daemon thread, and the
awaiting side gives up after the deadline; the thread, if it ever returns,
finds nobody waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def call_with_deadline(deadline_s: float, call: Callable[..., T], *args: object) -> T:
    """`call(*args)` in a daemon thread; TimeoutError after `deadline_s`."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[T] = loop.create_future()

    def succeed(value: T) -> None:
        if not outcome.done():
            outcome.set_result(value)

    def fail(error: BaseException) -> None:
        if not outcome.done():
            outcome.set_exception(error)

    def run() -> None:
        try:
            settle = functools.partial(succeed, call(*args))
        except BaseException as error:
            settle = functools.partial(fail, error)
        # A closed loop raises RuntimeError: nobody waits for this outcome.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle)

    name = f"blocking-{getattr(call, '__name__', 'call')}"
    threading.Thread(target=run, name=name, daemon=True).start()
    try:
        return await asyncio.wait_for(outcome, deadline_s)
    except TimeoutError:
        raise TimeoutError(f"no answer within {deadline_s:g} s") from None
