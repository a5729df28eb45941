"""The production app with a stage that fails outside the KPI code, where no
poison pill is to blame (say, a bug in how it sends): every send of ingest to
the interaction partitions raises."""

from __future__ import annotations

from typing import Any

from streams.pipeline import app as pipeline

ERROR = "injected: sending to the interaction partitions failed"


async def _failing_send(out: Any) -> None:
    raise RuntimeError(ERROR)


pipeline._send_interactions = _failing_send  # type: ignore[assignment]
app = pipeline.app

__all__ = ["app"]
