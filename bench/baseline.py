"""The baseline: the straightforward Faust implementation, kept as the reference.

One event at a time (`async for`), the interaction's state written to a table
on every event, and one hopping-window table per KPI quantity and window, as
Faust's documentation teaches: volume, answered, abandoned, FRT sum and count,
ended, escalated, resolved and first-contact-resolved, per channel and queue,
over 5m (1 min hops), 1h (5 min hops) and 24h (1 h hops). Event time comes from
the event's `ts`. Single-event messages only.

Run: python -m faust -A bench.baseline --loop uvloop worker (see bench.faustapp for the env).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import faust

from bench.faustapp import Progress, input_topics, make_app

app = make_app()
source = app.topic(*input_topics(), value_serializer="json")
progress = Progress()

QUANTITIES = (
    "volume",
    "answered",
    "abandoned",
    "frt_sum_ms",
    "frt_count",
    "ended",
    "escalated",
    "resolved",
    "fcr",
)
WINDOWS = {"5m": (300, 60), "1h": (3600, 300), "24h": (86400, 3600)}
REPEAT_WINDOW_MS = 7 * 86_400_000
CHANNEL_OF_TOPIC = {"calls": "call", "chats": "chat", "emails": "email", "social": "social"}


def ts_ms(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(datetime.fromisoformat(value).timestamp() * 1000)


def event_seconds(event: faust.types.EventT) -> float:
    return ts_ms(event.value["ts"]) / 1000


PARTITIONS = 4
"""Tables are co-partitioned with the input topics (python -m bench makes 4)."""
interactions = app.Table("interactions", default=dict, partitions=PARTITIONS)
customers = app.Table("customers", default=int, partitions=PARTITIONS)
windowed = {
    (quantity, label): app.Table(f"{quantity}-{label}", default=int, partitions=PARTITIONS)
    .hopping(size, step, expires=timedelta(seconds=size))
    .relative_to(event_seconds)
    for quantity in QUANTITIES
    for label, (size, step) in WINDOWS.items()
}


def add(quantity: str, key: str, amount: int = 1) -> None:
    for label in WINDOWS:
        windowed[(quantity, label)][key] += amount


@app.agent(source)
async def kpis(stream: faust.StreamT) -> None:
    async for event in stream.events():
        progress.add(1)
        e = event.value
        kind = e["type"]
        iid = e["interaction_id"]
        at = ts_ms(e["ts"])
        state = dict(interactions[iid])
        if kind == "contact.started":
            channel = CHANNEL_OF_TOPIC[event.message.topic.rsplit(".", 1)[-1]]
            customer = e["customer_id"]
            previous = customers[customer]
            state.update(
                channel=channel,
                queue=e["queue"],
                start=at,
                repeat=bool(previous) and at - previous < REPEAT_WINDOW_MS,
            )
            customers[customer] = at
            add("volume", f"{channel}|{e['queue']}")
        key = f"{state.get('channel', 'unknown')}|{state.get('queue', 'unknown')}"
        if kind == "agent.responded" and "start" in state and not state.get("responded"):
            state["responded"] = True
            if not state.get("abandoned"):
                add("answered", key)
                add("frt_sum_ms", key, max(0, at - state["start"]))
                add("frt_count", key)
        elif kind == "contact.abandoned" and "start" in state and not state.get("responded"):
            state["abandoned"] = True
            add("abandoned", key)
        elif kind == "contact.escalated":
            state["escalated"] = True
        elif kind == "contact.ended":
            add("ended", key)
            if state.get("escalated"):
                add("escalated", key)
            if e["resolved"]:
                add("resolved", key)
                if not state.get("repeat"):
                    add("fcr", key)
        interactions[iid] = state


@app.timer(interval=0.2)
async def report() -> None:
    progress.write()
