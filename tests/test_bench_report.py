"""The generated report's throughput ratios: the pipeline's, the least
work's (bench/least.py) against the Faust floor when that variant ran, and
the compiled pipeline's (bench/compiled.py) against the pipeline too."""

import argparse

from bench.report import generated
from bench.run import BATCHED, SINGLE, Results, Run


def _results(*runs: tuple[str, str, float]) -> Results:
    args = argparse.Namespace(
        command="python -m bench", single_events=1000, events=1000, rounds=1, baseline_events=10
    )
    return Results(args, [Run(v, d, int(rate), 1.0, 1.0, 2**20) for v, d, rate in runs])


def test_the_least_work_is_set_against_the_floor() -> None:
    lines = generated(
        _results(
            ("floor", SINGLE, 10_000),
            ("least", SINGLE, 8_000),
            ("pipeline", SINGLE, 5_000),
            ("floor", BATCHED, 300_000),
            ("least", BATCHED, 60_000),
        )
    )
    assert f"- {SINGLE}: pipeline/floor 0.5, least/floor 0.8" in lines
    assert f"- {BATCHED}: least/floor 0.2" in lines


def test_without_the_least_work_only_the_pipeline_has_ratios() -> None:
    lines = generated(_results(("floor", SINGLE, 10_000), ("pipeline", SINGLE, 4_000)))
    assert f"- {SINGLE}: pipeline/floor 0.4" in lines
    assert not [line for line in lines if "least/" in line or line.startswith(f"- {BATCHED}")]


def test_the_compiled_pipeline_is_set_against_the_pipeline() -> None:
    lines = generated(
        _results(
            ("floor", SINGLE, 10_000),
            ("pipeline", SINGLE, 4_000),
            ("mypyc", SINGLE, 5_000),
            ("pipeline", BATCHED, 10_000),
            ("mypyc", BATCHED, 13_000),
        )
    )
    assert f"- {SINGLE}: pipeline/floor 0.4, mypyc/pipeline 1.25, mypyc/floor 0.5" in lines
    assert f"- {BATCHED}: mypyc/pipeline 1.3" in lines
    assert "| mypyc | single | 5,000 | 5,000 | 5,000 | 0.200 | 1 MiB |" in lines
