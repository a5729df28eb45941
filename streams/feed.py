"""A simple, seeded event feed: plausible contact lifecycles on all channels.

Not the contact-center model of the simulator: each contact's path (answered
or abandoned, transferred, escalated, resolved, surveyed, repeated by the same
customer) is drawn independently. It exists so that the numbers move in the
demo and so that tests have realistic traffic of a known shape.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

QUEUES: Final = {
    "call": ("billing", "support", "sales"),
    "chat": ("support", "sales"),
    "email": ("support", "claims"),
    "social": ("care",),
}
NETWORKS: Final = ("facebook", "twitter", "instagram")
REASONS: Final = ("invoice", "password", "delivery", "refund", None)
TOPIC_OF: Final = {
    "call": "cc.calls",
    "chat": "cc.chats",
    "email": "cc.emails",
    "social": "cc.social",
}
SURVEY_TOPIC: Final = "cc.surveys"
# Typical first-response scale per channel, seconds.
_WAIT: Final = {"call": 25.0, "chat": 45.0, "email": 6 * 3600.0, "social": 1800.0}


@dataclass(frozen=True, slots=True)
class FeedEvent:
    topic: str
    key: str
    event: dict[str, Any]


def rfc3339(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class Feed:
    """Contacts starting every `gap_ms` on average from `start_ms`, in event-time order."""

    def __init__(
        self, seed: int, start_ms: int, customers: int = 500, gap_ms: int = 2000, run: str = ""
    ) -> None:
        """`run` prefixes every id, so that two runs with the same seed do not
        produce the same event ids (which the pipeline would drop as duplicates)."""
        self.run = run
        self.rng = random.Random(seed)
        self.start_ms = start_ms
        self.customers = customers
        self.gap_ms = gap_ms
        self._next_id = 0

    def _id(self, prefix: str) -> str:
        self._next_id += 1
        return f"{self.run}{prefix}-{self._next_id}"

    def contacts(self, count: int) -> list[FeedEvent]:
        """The events of `count` contacts, sorted by event time."""
        events: list[tuple[int, int, FeedEvent]] = []
        at = self.start_ms
        for _ in range(count):
            at += int(self.rng.expovariate(1 / self.gap_ms))
            for feed_event in self._contact(at):
                events.append((event_ms(feed_event.event), len(events), feed_event))
        events.sort(key=lambda item: (item[0], item[1]))
        return [item[2] for item in events]

    def live(self) -> Iterator[tuple[int, FeedEvent]]:
        """(event time ms, event) without end, in event-time order: a contact is
        drawn as soon as its start is the earliest thing left to send."""
        pending: list[tuple[int, int, FeedEvent]] = []
        seq = 0
        next_start = self.start_ms + int(self.rng.expovariate(1 / self.gap_ms))
        while True:
            while not pending or next_start <= pending[0][0]:
                for feed_event in self._contact(next_start):
                    seq += 1
                    heapq.heappush(pending, (event_ms(feed_event.event), seq, feed_event))
                next_start += int(self.rng.expovariate(1 / self.gap_ms))
            at, _, feed_event = heapq.heappop(pending)
            yield at, feed_event

    def _contact(self, start: int) -> list[FeedEvent]:
        rng = self.rng
        channel = rng.choices(("call", "chat", "email", "social"), (5, 3, 2, 2))[0]
        queue = rng.choice(QUEUES[channel])
        customer = f"cust-{rng.randrange(self.customers)}"
        iid = self._id(channel[:2])
        topic = TOPIC_OF[channel]
        base: dict[str, Any] = {"interaction_id": iid}
        out: list[FeedEvent] = []

        def emit(kind: str, at: int, **fields: Any) -> None:
            ts: Any = at if rng.random() < 0.3 else rfc3339(at)
            event = {"event_id": self._id("ev"), "type": kind, "ts": ts, **base, **fields}
            out.append(FeedEvent(topic, customer, event))

        started: dict[str, Any] = {
            "customer_id": customer,
            "queue": queue,
            "priority": rng.choice(("low", "normal", "high")),
        }
        if channel == "social":
            started["network"] = rng.choice(NETWORKS)
        reason = rng.choice(REASONS)
        if reason is not None:
            started["reason"] = reason
        emit("contact.started", start, **started)
        wait = int(rng.expovariate(1 / _WAIT[channel]) * 1000)
        if channel in ("call", "chat") and rng.random() < 0.12:
            emit("contact.abandoned", start + int(rng.uniform(0.5, 2.0) * wait) + 1)
            return out
        t = start + wait
        emit("agent.responded", t, agent_id=f"agent-{rng.randrange(40)}")
        if channel != "call":
            for _ in range(rng.randrange(3)):
                t += int(rng.uniform(5, 600) * 1000)
                emit("customer.messaged", t)
                t += int(rng.expovariate(1 / (_WAIT[channel] / 2)) * 1000)
                emit("agent.responded", t, agent_id=f"agent-{rng.randrange(40)}")
        if rng.random() < 0.1:
            t += int(rng.uniform(10, 120) * 1000)
            emit("contact.transferred", t, to_queue=rng.choice(QUEUES[channel]))
        if rng.random() < 0.12:
            t += int(rng.uniform(10, 120) * 1000)
            emit("contact.escalated", t, level=rng.choice((2, "tier-3")))
        t += int(rng.uniform(60, 900) * 1000)
        resolved = rng.random() < 0.8
        ended: dict[str, Any] = {"resolved": resolved, "agent_id": f"agent-{rng.randrange(40)}"}
        if channel == "call":
            ended |= {
                "talk_seconds": round(rng.uniform(30, 600), 1),
                "hold_seconds": round(rng.uniform(0, 60), 1),
                "wrap_seconds": round(rng.uniform(5, 90), 1),
            }
        elif rng.random() < 0.5:
            ended["talk_seconds"] = round(rng.uniform(60, 1200), 3)
        emit("contact.ended", t, **ended)
        if channel == "email" and resolved and rng.random() < 0.05:
            t += int(rng.uniform(3600, 86400) * 1000)
            emit("contact.reopened", t)
            t += int(rng.uniform(600, 7200) * 1000)
            emit("contact.ended", t, resolved=True)
        if rng.random() < 0.35:
            t += int(rng.uniform(60, 3600) * 1000)
            answers: dict[str, Any] = {}
            if rng.random() < 0.8:
                answers["csat"] = rng.randint(1, 5)
            if rng.random() < 0.6:
                answers["nps"] = rng.randint(0, 10)
            if not answers or rng.random() < 0.4:
                answers["ces"] = rng.randint(1, 7)
            survey = {
                "event_id": self._id("sv"),
                "type": "survey.answered",
                "ts": rfc3339(t),
                "interaction_id": iid,
                **answers,
            }
            if rng.random() < 0.7:
                survey |= {"channel": channel, "queue": queue}
            out.append(FeedEvent(SURVEY_TOPIC, customer, survey))
        return out


def event_ms(event: dict[str, Any]) -> int:
    """The event time of a feed event in epoch ms (its `ts` is either form)."""
    ts = event["ts"]
    if isinstance(ts, int):
        return ts
    return round(datetime.fromisoformat(ts).timestamp() * 1000)
