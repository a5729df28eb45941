"""Measure what a simulated run produced, straight from its events.

Independent of the pipeline on purpose: the simulator's tests check its
statistics against the scenario's parameters, not against other project code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

FRT_TARGET_MS = {"call": 30_000, "chat": 60_000, "email": 86_400_000, "social": 7_200_000}
TWITTER_TARGET_MS = 3_600_000
SHORT_ABANDON_MS = 5_000
HOUR_MS = 3_600_000


@dataclass
class Contact:
    iid: str
    channel: str
    queue: str
    network: str | None
    customer: str
    reason: str | None
    start: int
    first_response: int | None = None
    abandoned: int | None = None
    ends: list[tuple[int, bool]] = field(default_factory=list)
    transferred: bool = False
    escalated: bool = False
    survey: dict[str, int] | None = None

    @property
    def frt(self) -> int | None:
        return None if self.first_response is None else self.first_response - self.start

    @property
    def target_ms(self) -> int:
        if self.channel == "social" and self.network == "twitter":
            return TWITTER_TARGET_MS
        return FRT_TARGET_MS[self.channel]


def contacts(events: Iterable[dict[str, Any]]) -> dict[str, Contact]:
    """Every contact of a run (events with integer `ts`, in time order)."""
    out: dict[str, Contact] = {}
    for e in events:
        kind = e["type"]
        if kind == "contact.started":
            out[e["interaction_id"]] = Contact(
                e["interaction_id"],
                e["channel"],
                e["queue"],
                e.get("network"),
                e["customer_id"],
                e.get("reason"),
                e["ts"],
            )
            continue
        c = out[e["interaction_id"]]
        if kind == "agent.responded" and c.first_response is None and c.abandoned is None:
            c.first_response = e["ts"]
        elif kind == "contact.abandoned":
            c.abandoned = e["ts"]
        elif kind == "contact.ended":
            c.ends.append((e["ts"], e["resolved"]))
        elif kind == "contact.transferred":
            c.transferred = True
        elif kind == "contact.escalated":
            c.escalated = True
        elif kind == "survey.answered":
            c.survey = {k: e[k] for k in ("csat", "nps", "ces")}
    return out


@dataclass
class Service:
    """Answer and abandonment figures of a set of contacts, as kpis.md defines them."""

    answered: int
    within: int
    abandoned: int
    frts: list[int]

    @property
    def offered(self) -> int:
        return self.answered + self.abandoned

    @property
    def service_level(self) -> float:
        return self.within / self.offered

    @property
    def abandonment(self) -> float:
        return self.abandoned / self.offered

    @property
    def frt_p90_s(self) -> float:
        ordered = sorted(self.frts)
        return ordered[int(0.9 * (len(ordered) - 1))] / 1000


def service(group: Iterable[Contact]) -> Service:
    answered = within = abandoned = 0
    frts = []
    for c in group:
        if c.first_response is not None:
            answered += 1
            frts.append(c.frt)
            within += c.frt <= c.target_ms
        elif c.abandoned is not None and c.abandoned - c.start >= SHORT_ABANDON_MS:
            abandoned += 1
    return Service(answered, within, abandoned, frts)


def hourly(group: Iterable[Contact], start_ms: int) -> dict[int, Service]:
    """Service per hour of the run, each contact counted in the hour it was decided
    (first response or abandon), as the pipeline's 1 h windows do."""
    by_hour: dict[int, list[Contact]] = defaultdict(list)
    for c in group:
        decided = c.first_response if c.first_response is not None else c.abandoned
        if decided is not None:
            by_hour[(decided - start_ms) // HOUR_MS].append(c)
    return {hour: service(cs) for hour, cs in sorted(by_hour.items())}
