"""Fuzzing the decoder through the ingest stage: whatever the bytes, nothing
raises and every message is fully accounted for (see fuzzing.check_ingest).

100,000 cases by default (CASES), in seeded runs of SHARD cases so CI runs the
same ones every time; CC_FUZZ_SCALE multiplies them. fuzz_decode.py is the same
check for atheris (test_atheris).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, example, given, seed, settings
from hypothesis import strategies as st

from streams.config import Settings
from tests.contract.fuzzing import (
    CATEGORIES,
    GOOD_DOCS,
    GOOD_ON_TOPIC,
    SCALE,
    SETTINGS,
    SHARD,
    cases,
    check_ingest,
    encode,
    json_values,
    polls,
    shards,
)

ROOT = Path(__file__).resolve().parents[2]
ATHERIS_RUNS = 100_000

# Cases per category; together at least 100,000.
CASES: dict[str, int] = {
    "random_bytes": 14_000,
    "truncated": 8_000,
    "deep": 8_000,
    "huge": 8_000,
    "non_finite": 6_000,
    "wrong_types": 8_000,
    "unknown_types": 7_000,
    "timestamps": 14_000,
    "bad_utf8": 10_000,
    "mixed_batches": 5_000,
    "damaged": 12_000,
}


def test_the_budget_covers_every_category_and_100k_cases() -> None:
    assert set(CASES) == set(CATEGORIES)
    assert sum(CASES.values()) >= 100_000


@pytest.mark.parametrize("category", CASES)
def test_fuzz(category: str) -> None:
    # Mixed batches come several to a poll, as the ingest agent takes them.
    messages = polls(CATEGORIES[category], most=2 if category == "mixed_batches" else 1)
    for run_seed in shards(category, CASES[category]):

        @seed(run_seed)
        @cases(SHARD, derandomize=False)
        @given(messages, st.sampled_from(SETTINGS))
        def run(messages: list[Any], config: Settings) -> None:
            check_ingest(config, messages)

        run()


def test_every_cut_point_of_every_sample_message() -> None:
    """Truncated JSON, exhaustively: each sample event alone and all of them
    as one batch, cut after every byte."""
    for value in [*GOOD_DOCS, GOOD_DOCS]:
        raw = encode(value)
        for config in SETTINGS:
            check_ingest(config, [("cc.calls", 0, cut, raw[:cut]) for cut in range(len(raw))])


def test_good_messages_all_go_on() -> None:
    for topic, doc in GOOD_ON_TOPIC:
        out = check_ingest(SETTINGS[1], [(topic, 0, 0, encode(doc)), (topic, 0, 1, encode([doc]))])
        assert out.deadletters == []
        assert sum(len(items) for items in out.interactions.values()) == 2


@cases(2_000)
@given(json_values, st.sampled_from(SETTINGS))
def test_a_json_scalar_is_not_an_object(value: Any, config: Settings) -> None:
    out = check_ingest(config, [("cc.chats", 0, 0, encode(value))])
    if not isinstance(value, dict | list):
        assert [d.reason for d in out.deadletters] == ["not_an_object"]


DEEP_ELEMENT = b'[{"event_id":1,"x":' + b"[" * 300 + b"]" * 300 + b"}]"


@settings(phases=[Phase.explicit], deadline=None, database=None)
@given(st.binary(), st.sampled_from(SETTINGS))
@example(None, SETTINGS[0])
@example(b"", SETTINGS[0])
@example(b"[" * 1025 + b"]" * 1025, SETTINGS[0])
@example(b"[" * 1024 + b"]" * 1024, SETTINGS[0])
@example(b"[{}," * 300 + b"{}" + b"]" * 300, SETTINGS[0])
@example(b'[{"x":' + b"[" * 300 + b"]" * 300 + b"}]", SETTINGS[1])
@example(b'{"a":' * 1100 + b"1" + b"}" * 1100, SETTINGS[0])
@example(b"[" + b"1e999," * 3 + b"1]", SETTINGS[0])
@example(b'{"ts": 1' + b"0" * 400 + b"}", SETTINGS[0])
@example(b"\xef\xbb\xbf{}", SETTINGS[0])
@example(b'"\\udc00"', SETTINGS[0])
# A bad batch element nested deeper than orjson re-encodes (254 levels) was
# dead-lettered as the whole batch instead of on its own.
@example(DEEP_ELEMENT, SETTINGS[0])
@example(DEEP_ELEMENT.replace(b"[{", b'[1, "x]", {'), SETTINGS[0])
@example(b' [ {"a":[[[' + b"[" * 300 + b'"]\\"[{,"' + b"]" * 303 + b"} , 2 ] ", SETTINGS[0])
def test_regressions(raw: bytes | None, config: Settings) -> None:
    check_ingest(config, [("cc.calls", 0, 0, raw), ("cc.surveys", 1, 0, raw)])


def test_atheris(tmp_path: Path) -> None:
    """The atheris target (fuzz_decode.py) from the sample messages, for a fixed
    number of runs and seed; any exception or broken account fails the run."""
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for number, doc in enumerate(GOOD_DOCS):
        (corpus / f"event-{number}").write_bytes(bytes([number]) + encode(doc))
    (corpus / "batch").write_bytes(b"\0" + encode(GOOD_DOCS))
    runs = max(1, round(ATHERIS_RUNS * SCALE))
    command = [sys.executable, "-m", "tests.contract.fuzz_decode", f"-runs={runs}", "-seed=1"]
    command += [f"-artifact_prefix={tmp_path}/", "-max_len=4096", str(corpus)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-5000:]
    assert f"Done {runs} runs" in done.stderr
