"""Survey answers that follow the experience: long waits and unresolved contacts score lower.

One latent satisfaction score (1-5 scale) per answering customer drives all three
questions, so CSAT, NPS and CES move together, as they do in real surveys.
"""

from __future__ import annotations

import random

from streams.simulator.scenario import SurveySpec


def satisfaction(
    rng: random.Random,
    spec: SurveySpec,
    channel: str,
    wait_ms: int,
    resolved: bool,
    transferred: bool,
    escalated: bool,
) -> float:
    """The latent score of one customer: the base, minus what went wrong, plus noise."""
    score = spec.base - min(
        spec.per_wait * wait_ms / spec.wait_unit_ms[channel], spec.max_wait_penalty
    )
    if not resolved:
        score -= spec.unresolved
    if transferred:
        score -= spec.transferred
    if escalated:
        score -= spec.escalated
    return score + rng.gauss(0.0, spec.noise)


def answers(rng: random.Random, score: float) -> dict[str, int]:
    """CSAT (1-5), NPS (0-10) and CES (1-7, 7 = very easy) from one latent score."""
    return {
        "csat": _clamp(round(score), 1, 5),
        "nps": _clamp(round((score - 1.0) * 2.5 + rng.gauss(0.0, 1.0)), 0, 10),
        "ces": _clamp(round(1.0 + (score - 1.0) * 1.5 + rng.gauss(0.0, 0.7)), 1, 7),
    }


def _clamp(value: int, low: int, high: int) -> int:
    return low if value < low else high if value > high else value
