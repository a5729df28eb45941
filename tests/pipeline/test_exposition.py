"""The /metrics exposition of a busy board passes `promtool check metrics`."""

from dataclasses import replace
from typing import Any

import orjson
from prometheus_client.registry import Collector

from streams.config import Settings
from streams.feed import Feed
from streams.pipeline.heap import Heap
from tests.pipeline.harness import (
    LocalPipeline,
    assert_promtool_clean,
    exposition,
    exposition_registry,
    needs_promtool,
)

T0 = 1_767_225_600_000
NOW = 2_000_000_000_000


def exposition_text() -> bytes:
    return exposition(*busy_board(), NOW, lag={("cc.calls", 0): 3})


def busy_registry() -> Collector:
    return exposition_registry(*busy_board(), NOW, lag={("cc.calls", 0): 3})


def busy_board() -> tuple[LocalPipeline, list[dict[str, Any]]]:
    settings = replace(Settings(), clock="event")
    pipe = LocalPipeline(settings)
    events = Feed(seed=4, start_ms=T0, customers=40, gap_ms=3_000).contacts(300)
    pipe.send([(e.topic, orjson.dumps(e.event)) for e in events], 2_000_000_000_000)
    pipe.send([("cc.calls", b"{broken")], 2_000_000_000_000)
    pipe.report_live(2_000_000_000_000)
    records = list(pipe.records(2_000_000_100_000).values())
    pipe.sla.evaluate(records, "2026-01-01T00:00:00Z")
    return pipe, records


@needs_promtool
def test_promtool_finds_nothing_to_lint():
    text = exposition_text()
    assert b"cc_kpi_service_level_ratio{" in text and b"cc_frt_seconds_bucket{" in text
    assert b'cc_deadletter_total{reason="invalid_json",topic="cc.calls"} 1.0' in text
    assert_promtool_clean(text)


def test_the_backpressure_gauges_show_the_last_measurement():
    pipe, records = busy_board()
    unmeasured = exposition(pipe, records, NOW).decode()
    assert "cc_internal_backlog" not in unmeasured
    assert "\ncc_input_held 0.0\n" in unmeasured
    held = exposition(
        pipe,
        records,
        NOW,
        internal_backlog=340,
        internal_backlog_items=251_000,
        input_held=True,
    ).decode()
    assert "\ncc_internal_backlog_messages 340.0\n" in held
    assert "\ncc_internal_backlog_items 251000.0\n" in held
    assert "\ncc_input_held 1.0\n" in held


def test_redis_health_is_absent_until_the_worker_has_asked_redis():
    pipe, records = busy_board()
    shown = {up: exposition(pipe, records, NOW, redis_up=up).decode() for up in (None, False, True)}
    assert "cc_redis_up" not in shown[None]
    assert "\ncc_redis_up 0.0\n" in shown[False]
    assert "\ncc_redis_up 1.0\n" in shown[True]


def test_the_heap_gauges_show_what_jemalloc_counts_and_are_absent_without_it():
    pipe, records = busy_board()
    assert "cc_heap_" not in exposition(pipe, records, NOW).decode()
    text = exposition(pipe, records, NOW, heap=Heap(allocated=700 << 20, resident=900 << 20))
    assert "\ncc_heap_allocated_bytes 7.340032e+08\n" in text.decode()
    assert "\ncc_heap_resident_bytes 9.437184e+08\n" in text.decode()
