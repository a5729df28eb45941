"""Compact JSON shapes of what travels between stages and sits in the tables.

Lists instead of objects: these are written for every event and every state
change, and a list of values is both smaller and faster to build than a dict.
"""

from __future__ import annotations

import zlib
from typing import Any

from streams.config import CHANNELS, UNKNOWN
from streams.contract.event import Event
from streams.core.interaction import ContactFacts, End


def partition_for(key: str, partitions: int) -> int:
    """Stable partition of a key: the same on every worker and after restarts."""
    return zlib.crc32(key.encode()) % partitions


def channel_partitions(partitions: int) -> list[int]:
    """The board partitions that hold a channel (the others hold none)."""
    return sorted({partition_for(channel, partitions) for channel in (*CHANNELS, UNKNOWN)})


def event_to_wire(e: Event) -> list[Any]:
    return [
        e.event_id,
        e.type,
        e.ts,
        e.interaction_id,
        e.channel,
        e.customer_id,
        e.queue,
        e.network,
        e.reason,
        e.resolved,
        e.talk_seconds,
        e.hold_seconds,
        e.wrap_seconds,
        e.csat,
        e.nps,
        e.ces,
    ]


def event_from_wire(w: list[Any]) -> Event:
    return Event(
        event_id=w[0],
        type=w[1],
        ts=w[2],
        interaction_id=w[3],
        channel=w[4],
        customer_id=w[5],
        queue=w[6],
        network=w[7],
        reason=w[8],
        resolved=w[9],
        talk_seconds=w[10],
        hold_seconds=w[11],
        wrap_seconds=w[12],
        csat=w[13],
        nps=w[14],
        ces=w[15],
    )


def facts_to_wire(f: ContactFacts) -> list[Any]:
    return [
        f.interaction_id,
        f.customer_id,
        f.reason,
        f.start_ts,
        list(f.key),
        [[e.ts, e.resolved, e.escalated, e.transferred] for e in f.ends],
    ]


def facts_from_wire(w: list[Any]) -> ContactFacts:
    channel, queue, network = w[4]
    return ContactFacts(
        interaction_id=w[0],
        customer_id=w[1],
        reason=w[2],
        start_ts=w[3],
        key=(channel, queue, network),
        ends=tuple(End(e[0], e[1], e[2], e[3]) for e in w[5]),
    )
