"""The production app with a stage that fails outside the KPI code, where no
poison pill is to blame (say, a bug in how it sends): every send of ingest to
the interaction partitions raises, after a while, as a send that times out
would. Meanwhile the timer that reports ingest's progress waits for the stage's
lock, and would get it the moment the batch fails if the worker lived on."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.pipeline import app as pipeline

ERROR = "injected: sending to the interaction partitions failed"
SEND_TIMEOUT_S = 2.0


async def _failing_send(out: Any) -> None:
    await asyncio.sleep(SEND_TIMEOUT_S)
    raise RuntimeError(ERROR)


pipeline._send_interactions = _failing_send  # type: ignore[assignment]
app = pipeline.app

__all__ = ["app"]
