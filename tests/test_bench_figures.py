"""The benchmark's figures: each started contact's time to show in a poll and
where in the run the worst of it was, and the CPU the machine spent."""

from __future__ import annotations

import time

import pytest

from bench.common import Series, machine_busy_seconds, sampling
from bench.run import visible_latencies


def test_each_contact_is_timed_to_the_first_poll_that_counts_it() -> None:
    produced = [100.0, 100.5, 101.0]
    series = [(100.2, 0), (100.4, 1), (100.9, 1), (101.1, 2), (101.7, 3)]
    figures = visible_latencies(produced, series)
    assert figures["seen"] == 3
    assert figures["max"] == pytest.approx(0.7)
    assert figures["worst_second"] == 1
    assert figures["worst_second_max"] == pytest.approx(0.7)


def test_a_hold_at_the_start_is_told_apart_from_the_steady_run() -> None:
    """Ten contacts a second for a minute, each seen 0.1 s later, except for
    a 2 s hold of the first second's."""
    produced = [1000.0 + i / 10 for i in range(600)]
    series = [(at + (2.0 if at < 1001.0 else 0.1), k) for k, at in enumerate(produced, 1)]
    figures = visible_latencies(produced, series)
    assert figures["p99"] == pytest.approx(2.0)
    assert figures["steady_p99"] == pytest.approx(0.1)
    assert (figures["worst_second"], figures["worst_second_max"]) == (0, pytest.approx(2.0))


def test_contacts_never_seen_are_not_timed() -> None:
    assert visible_latencies([1.0, 2.0], [(1.5, 1)])["seen"] == 1
    assert visible_latencies([1.0], [(0.5, 0)]) == {"seen": 0}


def test_the_machine_busy_time_counts_at_least_this_process_cpu() -> None:
    machine = Series(machine_busy_seconds)
    with sampling(machine, every_s=0.05):
        started = time.process_time()
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            pass
        own = time.process_time() - started
    first, last = machine.samples[0][0], machine.samples[-1][0]
    assert len(machine.samples) >= 5
    assert machine.between(first, last) >= own - 0.05
