"""Coverage-guided fuzzing (atheris, libFuzzer) of the decoder and the dead
letters of the ingest stage, with the same property as the hypothesis tests
(fuzzing.check_ingest): nothing raises and every message is accounted for.

The first byte of an input picks the input topic and the limits, the rest is
the message value. test_fuzz.test_atheris runs it for a fixed number of runs;
for a longer run, from the repository root:

    .venv/bin/python -m tests.contract.fuzz_decode -runs=1000000 [corpus dir]
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["streams"]):
    from tests.contract.fuzzing import INPUT_TOPICS, SETTINGS, check_ingest


def one_input(data: bytes) -> None:
    if not data:
        return
    choice, raw = data[0], data[1:]
    topic = INPUT_TOPICS[choice % len(INPUT_TOPICS)]
    config = SETTINGS[choice // len(INPUT_TOPICS) % len(SETTINGS)]
    check_ingest(config, [(topic, 0, 0, raw)])


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
