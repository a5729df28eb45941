"""The production app with one planted bug: the KPI code raises on the contact
`poison-pill`, as a real bug would on some unforeseen input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.core import interaction

POISON = "poison-pill"
_contributions = interaction.contributions


def _buggy(events: Sequence[Any], rules: Any) -> Any:
    if any(e.interaction_id == POISON for e in events):
        raise ZeroDivisionError("planted bug")
    return _contributions(events, rules)


interaction.contributions = _buggy  # type: ignore[assignment]

from streams.pipeline.app import app  # noqa: E402  (after the patch, on purpose)

__all__ = ["app"]
