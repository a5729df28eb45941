"""An independent, deliberately naive computation of the KPIs of kpis.md.

It shares no code with the pipeline: it reads the raw event dicts, keeps
every interaction's events in lists, and recomputes everything by brute force
for one window at a time. Tests compare the pipeline's outputs with it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

TOPIC_CHANNEL = {
    "cc.calls": "call",
    "cc.chats": "chat",
    "cc.emails": "email",
    "cc.social": "social",
}
FRT_TARGET_S = {"call": 30, "chat": 60, "email": 86_400, "social": 7_200}
NETWORK_TARGET_S = {"twitter": 3_600}
SHORT_ABANDON_MS = 5_000
REPEAT_MS = 7 * 86_400_000


def ms(ts: Any) -> int:
    if isinstance(ts, int):
        return ts
    return round(datetime.fromisoformat(ts).timestamp() * 1000)


def iso_ms(ms_: int) -> str:
    """Epoch ms as the output contract writes it (milliseconds only when not zero)."""
    moment = datetime.fromtimestamp(ms_ / 1000, tz=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms_ % 1000:03d}Z" if ms_ % 1000 else f"{text}Z"


def frt_target_ms(channel: str, network: str | None) -> int:
    if channel == "social" and network in NETWORK_TARGET_S:
        return NETWORK_TARGET_S[network] * 1000
    return FRT_TARGET_S[channel] * 1000


class Facts:
    """Every fact (key, time, name, value) that any KPI counts."""

    def __init__(self) -> None:
        self.items: list[tuple[tuple[str, str, str], int, str, float]] = []
        self.latest = 0
        """The latest event time of the input (where a drained event clock ends)."""

    def add(self, key: tuple[str, str, str], at: int, name: str, value: float = 1) -> None:
        self.items.append((key, at, name, value))


def facts_of(messages: list[tuple[str, dict[str, Any]]]) -> Facts:
    """messages: (topic, event) in any order, duplicates included."""
    facts = Facts()
    seen: set[str] = set()
    by_interaction: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for topic, event in messages:
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        e = dict(event)
        e["_ms"] = ms(event["ts"])
        facts.latest = max(facts.latest, e["_ms"])
        e["_channel"] = TOPIC_CHANNEL.get(topic) or event.get("channel")
        by_interaction[event["interaction_id"]].append(e)

    contacts: list[dict[str, Any]] = []
    for events in by_interaction.values():
        starts = [e for e in events if e["type"] == "contact.started"]
        start = min(starts, key=lambda e: e["_ms"]) if starts else None
        key = None
        if start is not None:
            channel = start["_channel"]
            network = start.get("network") if channel == "social" else "-"
            key = (channel, start["queue"], network or "unknown")
            _lifecycle(events, start, key, facts, contacts)
        for survey in (e for e in events if e["type"] == "survey.answered"):
            _survey(survey, key, facts)
    _repeats(contacts, facts)
    return facts


def _lifecycle(events, start, key, facts, contacts) -> None:
    t0 = start["_ms"]
    facts.add(key, t0, "started")
    responses = sorted(e["_ms"] for e in events if e["type"] == "agent.responded")
    abandons = sorted(e["_ms"] for e in events if e["type"] == "contact.abandoned")
    answered = bool(responses) and (not abandons or responses[0] <= abandons[0])
    if answered:
        frt = max(0, responses[0] - t0)
        facts.add(key, responses[0], "answered")
        facts.add(key, responses[0], "frt", frt)
        if frt <= frt_target_ms(key[0], key[2]):
            facts.add(key, responses[0], "answered_within_target")
        messages = sorted(e["_ms"] for e in events if e["type"] == "customer.messaged")
        waiting_since = None
        timeline = sorted(
            [(t, 1, "m") for t in messages if t >= responses[0]]
            + [(t, 0, "r") for t in responses[1:]]
        )
        # responses at the same time as a message come before it (answer rank)
        for at, _rank, kind in timeline:
            if kind == "m" and waiting_since is None:
                waiting_since = at
            elif kind == "r" and waiting_since is not None:
                facts.add(key, at, "next_response", at - waiting_since)
                waiting_since = None
    elif abandons:
        waited = abandons[0] - t0
        facts.add(key, abandons[0], "short_abandoned" if waited < SHORT_ABANDON_MS else "abandoned")

    lifecycle = sorted(
        (e for e in events if e["type"] in ("contact.ended", "contact.reopened")),
        key=lambda e: (e["_ms"], 0 if e["type"] == "contact.ended" else 1),
    )
    ends = []
    can_end = True
    for e in lifecycle:
        if e["type"] == "contact.reopened":
            facts.add(key, e["_ms"], "reopened")
            can_end = True
        elif can_end:
            can_end = False
            ends.append(e)
    escalations = [e["_ms"] for e in events if e["type"] == "contact.escalated"]
    transfers = [e["_ms"] for e in events if e["type"] == "contact.transferred"]
    contact_ends = []
    for end in ends:
        at = end["_ms"]
        escalated = any(t <= at for t in escalations)
        transferred = any(t <= at for t in transfers)
        facts.add(key, at, "ended")
        if escalated:
            facts.add(key, at, "escalated")
        if transferred:
            facts.add(key, at, "transferred")
        parts = [end.get(p) for p in ("talk_seconds", "hold_seconds", "wrap_seconds")]
        if any(p is not None for p in parts):
            facts.add(key, at, "handle", sum(p for p in parts if p is not None))
        if end["resolved"]:
            facts.add(key, at, "resolved")
            facts.add(key, at, "resolution", at - t0)
        contact_ends.append((at, end["resolved"], escalated, transferred))
    contacts.append(
        {
            "customer": start["customer_id"],
            "reason": start.get("reason"),
            "start": t0,
            "key": key,
            "ends": contact_ends,
            "id": start["interaction_id"],
        }
    )


def _survey(survey, key, facts) -> None:
    channel = survey.get("channel") or (key[0] if key else "unknown")
    same = key is not None and key[0] == channel
    queue = survey.get("queue") or (key[1] if same else "unknown")
    network = "-" if channel != "social" else (key[2] if same else "unknown")
    skey = (channel, queue, network)
    at = survey["_ms"]
    if "csat" in survey:
        facts.add(skey, at, "csat_answers")
        if survey["csat"] >= 4:
            facts.add(skey, at, "csat_satisfied")
    if "nps" in survey:
        facts.add(skey, at, "nps_answers")
        if survey["nps"] >= 9:
            facts.add(skey, at, "nps_promoters")
        if survey["nps"] <= 6:
            facts.add(skey, at, "nps_detractors")
    if "ces" in survey:
        facts.add(skey, at, "ces_answers")
        facts.add(skey, at, "ces", survey["ces"])


def _repeats(contacts, facts) -> None:
    # A repeat is the same customer's, so only their contacts are compared:
    # comparing every pair took two minutes for 22,000 contacts.
    by_customer: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for c in contacts:
        by_customer[c["customer"]].append(c)
    for c in contacts:
        repeat = any(
            o["id"] != c["id"]
            and c["start"] - REPEAT_MS <= o["start"] < c["start"]
            and (c["reason"] is None or o["reason"] == c["reason"])
            for o in by_customer[c["customer"]]
        )
        if repeat:
            facts.add(c["key"], c["start"], "repeat_contacts")
        for at, resolved, escalated, transferred in c["ends"]:
            if resolved and not (repeat or escalated or transferred):
                facts.add(c["key"], at, "resolved_first_contact")


COUNT_NAMES = (
    "started",
    "answered",
    "answered_within_target",
    "abandoned",
    "short_abandoned",
    "ended",
    "escalated",
    "transferred",
    "resolved",
    "resolved_first_contact",
    "repeat_contacts",
    "reopened",
    "csat_answers",
    "csat_satisfied",
    "nps_answers",
    "nps_promoters",
    "nps_detractors",
    "ces_answers",
)


def window(facts: Facts, start_ms: int, end_ms: int) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Counts and KPIs per key and per roll-up, for facts with start <= t < end."""
    groups: dict[tuple[str, str, str], list[tuple[str, float]]] = defaultdict(list)
    for key, at, name, value in facts.items:
        if not start_ms <= at < end_ms:
            continue
        channel, queue, network = key
        rollups = [key, (channel, "*", network)]
        if network != "-":
            rollups += [(channel, queue, "*"), (channel, "*", "*")]
        for group in rollups:
            groups[group].append((name, value))
    return {key: _kpis(key[0], items) for key, items in groups.items()}


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


def _kpis(channel: str, items: list[tuple[str, float]]) -> dict[str, Any]:
    counts = {name: 0 for name in COUNT_NAMES}
    values: dict[str, list[float]] = defaultdict(list)
    for name, value in items:
        if name in counts:
            counts[name] += 1
        else:
            values[name].append(value)
    c = counts

    def ratio(a: float, b: float) -> float | None:
        return a / b if b else None

    offered = c["answered"] + c["abandoned"]
    frt = [v / 1000 for v in values["frt"]]
    nr = [v / 1000 for v in values["next_response"]]
    frt_mean = ratio(sum(frt), len(frt))
    kpis = {
        "volume": c["started"],
        "frt_mean_seconds": frt_mean,
        "frt_p50_seconds": _quantile(frt, 0.5),
        "frt_p90_seconds": _quantile(frt, 0.9),
        "frt_p99_seconds": _quantile(frt, 0.99),
        "asa_seconds": frt_mean if channel == "call" else None,
        "next_response_mean_seconds": ratio(sum(nr), len(nr)),
        "next_response_p90_seconds": _quantile(nr, 0.9),
        "answer_rate": ratio(c["answered"], offered),
        "service_level": ratio(c["answered_within_target"], offered),
        "abandonment_rate": ratio(c["abandoned"], offered),
        "escalation_rate": ratio(c["escalated"], c["ended"]),
        "transfer_rate": ratio(c["transferred"], c["ended"]),
        "fcr_rate": ratio(c["resolved_first_contact"], c["resolved"]),
        "repeat_contact_rate": ratio(c["repeat_contacts"], c["started"]),
        "contacts_per_resolution": ratio(c["started"], c["resolved"]),
        "aht_seconds": ratio(sum(values["handle"]), len(values["handle"])),
        "resolution_time_mean_seconds": ratio(
            sum(values["resolution"]) / 1000, len(values["resolution"])
        ),
        "reopen_rate": ratio(c["reopened"], c["resolved"]),
        "csat": ratio(c["csat_satisfied"], c["csat_answers"]),
        "nps": ratio(100 * c["nps_promoters"] - 100 * c["nps_detractors"], c["nps_answers"]),
        "ces": ratio(sum(values["ces"]), c["ces_answers"]),
    }
    return {"counts": counts, "kpis": kpis}


QUANTILE_FIELDS = {
    "frt_p50_seconds",
    "frt_p90_seconds",
    "frt_p99_seconds",
    "next_response_p90_seconds",
}
LIVE_FIELDS = {"queue_now", "oldest_waiting_seconds", "at_risk"}


def compare(record: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Differences between a pipeline record and the naive figures (empty = equal):
    counts exact, every ratio and mean exact (to float rounding), quantiles within 1 %."""
    problems = []
    for name, value in expected["counts"].items():
        if record["counts"][name] != value:
            problems.append(f"count {name}: pipeline {record['counts'][name]} != naive {value}")
    for name, value in expected["kpis"].items():
        got = record["kpis"][name]
        if value is None or got is None:
            if value != got:
                problems.append(f"{name}: pipeline {got} != naive {value}")
            continue
        tolerance = (
            0.01 * abs(value) + 1e-9 if name in QUANTILE_FIELDS else 1e-9 * max(1, abs(value))
        )
        if abs(got - value) > tolerance:
            problems.append(f"{name}: pipeline {got} != naive {value}")
    return problems
