"""What one interaction contributes to the KPIs, as a pure function of its events.

An interaction's contributions are recomputed from the set of its events every
time one arrives, and only the difference to the previous set is sent on. So
arrival order never matters: any order of the same events (within the allowed
lateness) ends with the same contributions, and a duplicate changes nothing.
Events are ordered by (ts, lifecycle rank, event_id) so ties are deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from streams.config import NO_NETWORK, UNKNOWN, SlaTable
from streams.contract.event import (
    ABANDONED,
    CUSTOMER_MESSAGED,
    ENDED,
    ESCALATED,
    REOPENED,
    RESPONDED,
    STARTED,
    SURVEY,
    TRANSFERRED,
    Event,
)
from streams.core.aggregate import CES, COUNT_INDEX, FRT, HANDLE, NEXT_RESPONSE, RESOLUTION
from streams.core.contribution import Contributions, Key, add

_RANK: Final = {
    STARTED: 0,
    RESPONDED: 1,
    CUSTOMER_MESSAGED: 2,
    ESCALATED: 3,
    TRANSFERRED: 4,
    ABANDONED: 5,
    ENDED: 6,
    REOPENED: 7,
    SURVEY: 8,
}

_STARTED = COUNT_INDEX["started"]
_ANSWERED = COUNT_INDEX["answered"]
_WITHIN = COUNT_INDEX["answered_within_target"]
_ABANDONED = COUNT_INDEX["abandoned"]
_SHORT = COUNT_INDEX["short_abandoned"]
_ENDED = COUNT_INDEX["ended"]
_ESCALATED = COUNT_INDEX["escalated"]
_TRANSFERRED = COUNT_INDEX["transferred"]
_RESOLVED = COUNT_INDEX["resolved"]
_REOPENED = COUNT_INDEX["reopened"]
_CSAT_N = COUNT_INDEX["csat_answers"]
_CSAT_OK = COUNT_INDEX["csat_satisfied"]
_NPS_N = COUNT_INDEX["nps_answers"]
_NPS_PRO = COUNT_INDEX["nps_promoters"]
_NPS_DET = COUNT_INDEX["nps_detractors"]
_CES_N = COUNT_INDEX["ces_answers"]


@dataclass(frozen=True, slots=True)
class Rules:
    """The configuration the lifecycle depends on."""

    short_abandon_ms: int
    sla: SlaTable


@dataclass(frozen=True, slots=True)
class End:
    ts: int
    resolved: bool
    escalated: bool
    transferred: bool


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """What the repeat-contact / FCR logic needs to know about one contact."""

    interaction_id: str
    customer_id: str
    reason: str | None
    start_ts: int
    key: Key
    ends: tuple[End, ...]


def ordered(events: Iterable[Event]) -> list[Event]:
    return sorted(events, key=lambda e: (e.ts, _RANK[e.type], e.event_id))


def _first(events: list[Event], kind: str) -> Event | None:
    for event in events:
        if event.type == kind:
            return event
    return None


def interaction_key(events: list[Event]) -> Key | None:
    """Channel, queue and network of the interaction; None if no event names a channel.

    The contact.started event decides; without it the first event that names a
    queue (or network) does. Surveys do not route the interaction itself.
    """
    if events:
        # The usual case, and the cheap one: the start comes first and names it all.
        start = events[0]
        channel, queue = start.channel, start.queue
        if start.type == STARTED and channel and queue:
            if channel != "social":
                return channel, queue, NO_NETWORK
            if start.network:
                return channel, queue, start.network
    lifecycle = [e for e in events if e.type != SURVEY]
    started = _first(lifecycle, STARTED)
    channel = (
        started.channel if started else next((e.channel for e in lifecycle if e.channel), None)
    )
    if channel is None:
        return None
    queue = (started.queue if started else None) or next(
        (e.queue for e in lifecycle if e.queue), UNKNOWN
    )
    if channel != "social":
        return channel, queue, NO_NETWORK
    network = (started.network if started else None) or next(
        (e.network for e in lifecycle if e.network), UNKNOWN
    )
    return channel, queue, network


def _survey_key(survey: Event, key: Key | None) -> Key:
    channel = survey.channel or (key[0] if key else UNKNOWN)
    same_channel = key if key is not None and key[0] == channel else None
    queue = survey.queue or (same_channel[1] if same_channel else UNKNOWN)
    if channel != "social":
        return channel, queue, NO_NETWORK
    return channel, queue, (same_channel[2] if same_channel else None) or survey.network or UNKNOWN


def contributions(events: list[Event], rules: Rules) -> Contributions:
    """Every contribution of an interaction, from its events in `ordered` order."""
    out: Contributions = {}
    key = interaction_key(events)
    if key is not None:
        _lifecycle(events, key, rules, out)
    for survey in events:
        if survey.type == SURVEY:
            _survey(survey, _survey_key(survey, key), out)
    return out


def _lifecycle(events: list[Event], key: Key, rules: Rules, out: Contributions) -> None:
    channel, queue, network = key
    start = _first(events, STARTED)
    first_response = _first(events, RESPONDED)
    abandon = _first(events, ABANDONED)
    answered = first_response is not None and (abandon is None or first_response.ts <= abandon.ts)
    if start is not None:
        add(out, (channel, queue, network, start.ts, _STARTED, 1))
        if answered:
            assert first_response is not None
            frt = max(0, first_response.ts - start.ts)
            at = first_response.ts
            add(out, (channel, queue, network, at, _ANSWERED, 1))
            add(out, (channel, queue, network, at, FRT, frt))
            target = rules.sla.targets(channel, queue, network).frt_seconds
            if target is not None and frt <= target * 1000:
                add(out, (channel, queue, network, at, _WITHIN, 1))
        elif abandon is not None:
            waited = abandon.ts - start.ts
            code = _SHORT if waited < rules.short_abandon_ms else _ABANDONED
            add(out, (channel, queue, network, abandon.ts, code, 1))

    pending_since: int | None = None
    escalated = transferred = False
    open_cycle = True
    for event in events:
        kind = event.type
        if kind == CUSTOMER_MESSAGED:
            if answered and pending_since is None and event.ts >= first_response.ts:  # type: ignore[union-attr]
                pending_since = event.ts
        elif kind == RESPONDED:
            if pending_since is not None and event is not first_response:
                gap = event.ts - pending_since
                add(out, (channel, queue, network, event.ts, NEXT_RESPONSE, gap))
                pending_since = None
        elif kind == ESCALATED:
            escalated = True
        elif kind == TRANSFERRED:
            transferred = True
        elif kind == ENDED and open_cycle:
            open_cycle = False
            at = event.ts
            add(out, (channel, queue, network, at, _ENDED, 1))
            if escalated:
                add(out, (channel, queue, network, at, _ESCALATED, 1))
            if transferred:
                add(out, (channel, queue, network, at, _TRANSFERRED, 1))
            handle = _handle_us(event)
            if handle is not None:
                add(out, (channel, queue, network, at, HANDLE, handle))
            if event.resolved:
                add(out, (channel, queue, network, at, _RESOLVED, 1))
                if start is not None:
                    took = max(0, at - start.ts)
                    add(out, (channel, queue, network, at, RESOLUTION, took))
        elif kind == REOPENED:
            open_cycle = True
            add(out, (channel, queue, network, event.ts, _REOPENED, 1))


def _handle_us(event: Event) -> int | None:
    parts = (event.talk_seconds, event.hold_seconds, event.wrap_seconds)
    if all(p is None for p in parts):
        return None
    return sum(round(p * 1_000_000) for p in parts if p is not None)


def _survey(event: Event, key: Key, out: Contributions) -> None:
    channel, queue, network = key
    at = event.ts
    if event.csat is not None:
        add(out, (channel, queue, network, at, _CSAT_N, 1))
        if event.csat >= 4:
            add(out, (channel, queue, network, at, _CSAT_OK, 1))
    if event.nps is not None:
        add(out, (channel, queue, network, at, _NPS_N, 1))
        if event.nps >= 9:
            add(out, (channel, queue, network, at, _NPS_PRO, 1))
        elif event.nps <= 6:
            add(out, (channel, queue, network, at, _NPS_DET, 1))
    if event.ces is not None:
        add(out, (channel, queue, network, at, _CES_N, 1))
        add(out, (channel, queue, network, at, CES, event.ces))


def contact_facts(interaction_id: str, events: list[Event]) -> ContactFacts | None:
    """The contact as the repeat/FCR logic sees it; None until its start (with a
    customer) is known."""
    start = _first(events, STARTED)
    if start is None or start.customer_id is None:
        return None
    key = interaction_key(events)
    assert key is not None
    ends: list[End] = []
    escalated = transferred = False
    open_cycle = True
    for event in events:
        if event.type == ESCALATED:
            escalated = True
        elif event.type == TRANSFERRED:
            transferred = True
        elif event.type == ENDED and open_cycle:
            open_cycle = False
            ends.append(End(event.ts, bool(event.resolved), escalated, transferred))
        elif event.type == REOPENED:
            open_cycle = True
    return ContactFacts(interaction_id, start.customer_id, start.reason, start.ts, key, tuple(ends))


def waiting_since(events: list[Event]) -> tuple[Key, int] | None:
    """(key, start ts) while the contact is in the queue: started, and not yet
    answered, abandoned or ended."""
    start = _first(events, STARTED)
    if start is None:
        return None
    for event in events:
        if event.type in (RESPONDED, ABANDONED, ENDED):
            return None
    key = interaction_key(events)
    assert key is not None
    return key, start.ts


def last_activity(events: list[Event]) -> tuple[int, bool]:
    """(latest event ts, whether the contact is over): an ended or abandoned
    contact, or one never seen starting, is kept only for the retention horizon."""
    latest = max(e.ts for e in events)
    started = abandoned = answered = False
    last_close: str | None = None
    for event in events:
        kind = event.type
        if kind == STARTED:
            started = True
        elif kind == RESPONDED:
            answered = True
        elif kind == ABANDONED:
            abandoned = abandoned or not answered
        elif kind in (ENDED, REOPENED):
            last_close = kind
    return latest, not started or last_close == ENDED or (abandoned and last_close is None)
