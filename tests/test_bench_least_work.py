"""`python -m bench.least_work`: the least work per event counts, on input in
event-time order, what the naive computation of kpis.md counts; so the CPU it
takes is a lower bound for a core that counts them all."""

import subprocess
import sys
from collections import defaultdict

import orjson
import pytest

from bench.common import ROOT
from bench.data import batched, events
from bench.least_work import NAMES, run
from tests import naive


def test_least_work_counts_what_the_naive_computation_counts() -> None:
    singles = list(events(20_000, 300, gap_ms=180_000))
    facts = naive.facts_of([(f"cc.{topic}", orjson.loads(value)) for topic, _, value in singles])
    expected: dict[tuple[str, str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for key, _at, name, value in facts.items:
        expected[key][name] += value
    # Batches of one: `batched` keeps each topic's order, not the order across
    # topics, and a customer's contacts on two channels need the latter.
    core = run((topic, value) for topic, _, value in batched(iter(singles), 1))
    found = core.totals()
    assert set(found) == set(expected)
    for key, sums in found.items():
        for name in NAMES:
            assert sums[name] == pytest.approx(expected[key].get(name, 0)), (key, name)
    assert sum(sums["repeat_contacts"] for sums in found.values()) > 0
    assert sum(sums["resolved_first_contact"] for sums in found.values()) > 0
    assert core.records > 0 and core.invalid == 0 and core.unknown == 0


def test_a_malformed_event_is_rejected_and_the_rest_of_its_batch_counted() -> None:
    good = [orjson.loads(value) for _, _, value in events(3, 10, gap_ms=1)]
    bad = {**good[0], "event_id": "bad", "ts": "yesterday"}
    core = run([("calls", orjson.dumps([bad, *good]))])
    assert core.invalid == 1
    assert len(core.seen) == 3


def test_the_command_prints_both_and_their_ratio() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.least_work", "--events", "5000", "--rounds", "1"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "least work: median" in done.stdout
    assert "the stages: median" in done.stdout
    assert "the stages / least work:" in done.stdout
