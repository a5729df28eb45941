"""/metrics is rendered as prometheus_client renders it, byte for byte: the
pipeline's own exposition, hostile label values, every value prometheus_client
formats specially, and the metric types the pipeline does not use itself."""

from __future__ import annotations

import math
from collections.abc import Iterator

import prometheus_client
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.publish.text_format import generate_latest
from tests.pipeline.test_exposition import busy_registry

HOSTILE = ['a"b', "back\\slash", "new\nline", "ü客", "", " ", '\\"\n']


class Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def test_the_pipeline_exposition_is_what_prometheus_client_renders() -> None:
    registry = busy_registry()
    text = generate_latest(registry)
    assert text.count(b"\n") > 500
    assert text == prometheus_client.generate_latest(registry)


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.sampled_from([0.0, -0.0, 1e7, 1234567.0, 1e-7, math.inf, -math.inf]),
)


@given(
    rows=st.lists(
        st.tuples(st.sampled_from(HOSTILE) | st.text(max_size=8), st.text(max_size=4), values),
        max_size=20,
    )
)
def test_any_label_values_and_numbers_render_the_same(rows: list[tuple[str, str, float]]) -> None:
    family = GaugeMetricFamily("cc_test", 'help with "quotes"\\ and\nnewline', labels=("q", "n"))
    for queue, network, value in rows:
        family.add_metric([queue, network], value)
    registry = Families([family])
    assert generate_latest(registry) == prometheus_client.generate_latest(registry)


def test_counters_histograms_and_info_render_the_same() -> None:
    registry = CollectorRegistry()
    requests = Counter("cc_test_requests", "Requests.", ["path"], registry=registry)
    requests.labels(path='/m"x').inc(3)
    waits = Histogram("cc_test_wait_seconds", "Waits.", registry=registry)
    waits.observe(0.3)
    Info("cc_test_build", "Build.", registry=registry).info({"version": "1\n2"})
    assert b"_created" in generate_latest(registry)
    assert generate_latest(registry) == prometheus_client.generate_latest(registry)
