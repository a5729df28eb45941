"""The Faust floor: an agent that only counts events, with the production
pipeline's Faust settings and the way its ingest agent takes events.

Run: python -m faust -A bench.floor --loop uvloop worker (see bench.faustapp for the env).
"""

from __future__ import annotations

import faust

from bench.faustapp import Progress, events_in, input_topics, make_app

app = make_app()
source = app.topic(
    *input_topics(), key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)
progress = Progress()


@app.agent(source)
async def count(stream: faust.StreamT) -> None:
    async for batch in stream.take_events(1000, within=0.05):
        progress.add(sum(events_in(e.value) for e in batch))


@app.timer(interval=0.2)
async def report() -> None:
    progress.write()
