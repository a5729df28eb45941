"""What the bench's own Faust apps (floor, baseline) share: the production
pipeline's Faust settings, and a status file the driver polls.

Configured by environment: BENCH_BOOTSTRAP, BENCH_APP_ID, BENCH_TOPICS (comma
separated), BENCH_STATUS (status file), BENCH_SKIP (events before timing
starts), BENCH_WEB_PORT, BENCH_DATA_DIR.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import faust
import orjson

from streams.pipeline import app as production
from streams.pipeline import transport

SHARED_SETTINGS = (
    "store",
    "topic_partitions",
    "table_standby_replicas",
    "producer_acks",
    "consumer_auto_offset_reset",
    "stream_buffer_maxsize",
    "broker_commit_interval",
    "broker_max_poll_records",
    "consumer_max_fetch_size",
)
"""The settings `streams.pipeline.app` passes to faust.App, read from it (not
copied); the app class is the pipeline's too (its fetch wait,
streams.pipeline.transport)."""


def make_app() -> faust.App:
    conf = production.app.conf
    return transport.App(
        os.environ["BENCH_APP_ID"],
        broker=f"kafka://{os.environ['BENCH_BOOTSTRAP']}",
        datadir=os.environ["BENCH_DATA_DIR"],
        web_port=int(os.environ["BENCH_WEB_PORT"]),
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        **{name: getattr(conf, name) for name in SHARED_SETTINGS},
    )


def input_topics() -> list[str]:
    return os.environ["BENCH_TOPICS"].split(",")


class Progress:
    """Events seen; when the count first passed BENCH_SKIP (start-up and the
    first batch are left out of the rate) and the time of the latest."""

    def __init__(self) -> None:
        self.count = 0
        self.skip = int(os.environ["BENCH_SKIP"])
        self.first = 0.0
        self.first_count = 0
        self.last = 0.0
        self.path = Path(os.environ["BENCH_STATUS"])

    def add(self, n: int) -> None:
        self.count += n
        self.last = time.time()
        if not self.first and self.count >= self.skip:
            self.first, self.first_count = self.last, self.count

    def write(self) -> None:
        body = {
            "count": self.count,
            "first": self.first,
            "first_count": self.first_count,
            "last": self.last,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(body))
        tmp.replace(self.path)


def events_in(value: bytes) -> int:
    """1 for a single event, the length for a batch: the floor has to know how
    many events a message carries, which means parsing it."""
    if value[:1] == b"[":
        return len(orjson.loads(value))
    return 1
