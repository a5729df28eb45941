"""The benchmark's figures: each started contact's time to show in a poll and
where in the run the worst of it was, the CPU the machine spent, and how long
a process waited for a core."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.common import Series, machine_busy_seconds, sampling, waiting_seconds
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


def test_a_process_sharing_one_core_with_two_others_waits_most_of_the_time() -> None:
    """Three busy processes on one core: each runs a third of the time at
    most and waits for the core the rest (more with other work on that core)."""
    busy = [sys.executable, "-c", "while True: pass"]
    procs = [subprocess.Popen(busy) for _ in range(3)]
    try:
        for proc in procs:
            os.sched_setaffinity(proc.pid, {0})
        time.sleep(0.3)
        before, started = waiting_seconds(procs[0].pid), time.monotonic()
        time.sleep(1.5)
        waited = waiting_seconds(procs[0].pid) - before
        elapsed = time.monotonic() - started
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert waited >= 0.5 * elapsed


def test_a_sleeping_process_does_not_wait_for_a_core() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.5)
        before = waiting_seconds(proc.pid)
        time.sleep(1.0)
        assert waiting_seconds(proc.pid) - before < 0.05
    finally:
        proc.kill()
        proc.wait()
