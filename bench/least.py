"""The least work in a Faust worker: the floor's agent (bench/floor.py), with
every event through `bench.least_work.LeastWork` and its state records
produced to a table's changelog every commit interval, as the pipeline's
stages write theirs (streams/pipeline/changelog.py).

What a worker with the least Python core could reach, with no stage behind
ingest and nothing repartitioned: the single-event messages are keyed by
customer, so each interaction's and customer's events come to one partition
in order. The batches carry no key: about 1.5 % of their events come before
their interaction's start, from another partition, and are skipped (logged
every 5 s), a little less work than counting them. A real pipeline can count
on no key (events.md) and does more per event.

Run: python -m faust -A bench.least --loop uvloop worker (see bench.faustapp for the env).
"""

from __future__ import annotations

import logging

import faust

from bench.faustapp import Progress, input_topics, make_app
from bench.least_work import LeastWork
from streams.pipeline import garbage
from streams.pipeline.app import COMMIT_INTERVAL_S
from streams.pipeline.changelog import BatchedChangelog
from streams.pipeline.wire import partition_for

app = make_app()
source = app.topic(
    *input_topics(), key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)
state = app.Table("least-state", key_type=str, value_type=bytes)
changelog = BatchedChangelog(state, lambda: app.producer._ensure_producer())
core = LeastWork()
progress = Progress()
log = logging.getLogger(__name__)


@app.task
async def collect_garbage_less_often() -> None:
    """As the pipeline's worker does (streams.pipeline.garbage)."""
    garbage.tune()


@app.agent(source)
async def least(stream: faust.StreamT) -> None:
    async for batch in stream.take_events(1000, within=0.05):
        progress.add(sum(core.take(e.message.topic.rsplit(".", 1)[-1], e.value) for e in batch))


@app.timer(interval=COMMIT_INTERVAL_S)
async def commit() -> None:
    partitions = app.conf.topic_partitions
    for key, value in core.commit():
        changelog.send_changelog(partition_for(key, partitions), key, value, "raw")
    await changelog.send()


@app.timer(interval=0.2)
async def report() -> None:
    progress.write()


@app.timer(interval=5.0)
async def unknown() -> None:
    """Events before their interaction's start were skipped, less work than a
    pipeline does: how many, to weigh the figure by."""
    log.warning("least: %d events, %d before their start", progress.count, core.unknown)
