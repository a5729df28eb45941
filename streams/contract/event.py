"""The validated form of one contact-center event (event contract v1).

Everything downstream of the decoder works on `Event`: timestamps are already
epoch milliseconds (UTC), the channel is resolved from the topic, and optional
fields are `None` when absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

CHANNELS: Final = ("call", "chat", "email", "social")

STARTED: Final = "contact.started"
RESPONDED: Final = "agent.responded"
CUSTOMER_MESSAGED: Final = "customer.messaged"
ABANDONED: Final = "contact.abandoned"
TRANSFERRED: Final = "contact.transferred"
ESCALATED: Final = "contact.escalated"
ENDED: Final = "contact.ended"
REOPENED: Final = "contact.reopened"
SURVEY: Final = "survey.answered"

EVENT_TYPES: Final = (
    STARTED,
    RESPONDED,
    CUSTOMER_MESSAGED,
    ABANDONED,
    TRANSFERRED,
    ESCALATED,
    ENDED,
    REOPENED,
    SURVEY,
)


@dataclass(slots=True)
class Event:
    """One valid event. `channel` is `None` only for a survey that names none.
    Not frozen: building a frozen dataclass costs several times more, and this
    is built for every event (treat it as read-only)."""

    event_id: str
    type: str
    ts: int
    interaction_id: str
    channel: str | None
    customer_id: str | None = None
    queue: str | None = None
    network: str | None = None
    agent_id: str | None = None
    reason: str | None = None
    priority: str | None = None
    resolved: bool | None = None
    talk_seconds: float | None = None
    hold_seconds: float | None = None
    wrap_seconds: float | None = None
    to_queue: str | None = None
    level: str | None = None
    csat: int | None = None
    nps: int | None = None
    ces: int | None = None
