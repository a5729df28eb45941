"""Whose code a profile sample is in, the cut that says what the pipeline would
cost with its KPI code free (docs/benchmarks.md)."""

import pytest

from bench.profile import CALLED, KPI, NO_FRAME, OUTPUT, OWN, STARTUP, STDLIB, owner

ROOT = (
    "_run_module_as_main (<frozen runpy>:198);Worker.execute_from_commandline (mode/worker.py:264)"
)
AGENT = (
    "_exits_on_failure.<locals>.run (streams/pipeline/app.py:607);"
    "interactions (streams/pipeline/app.py:867)"
)
THREAD = "Thread._bootstrap (threading.py:1002);Thread.run (threading.py:982)"


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        (f"{ROOT};{AGENT};Interactions.process (streams/pipeline/stages.py:433)", KPI),
        (
            f"{ROOT};{AGENT};Interactions.process (streams/pipeline/stages.py:433);"
            "Counter.update (collections/__init__.py:690)",
            KPI,
        ),
        (f"{ROOT};report_live (streams/pipeline/app.py:950);_sum (streams/core/x.py:1)", OUTPUT),
        (
            f"{ROOT};{AGENT};BatchedChangelog._send (streams/pipeline/changelog.py:82);"
            "BatchBuilder.append (aiokafka/producer/message_accumulator.py:77)",
            CALLED,
        ),
        (
            f"{THREAD};ServiceThread._start_thread (mode/threads.py:211);"
            "Fetcher._proc_fetch_request (aiokafka/consumer/fetcher.py:400);"
            "StreamWriter.write (asyncio/streams.py:343)",
            OWN,
        ),
        ("", NO_FRAME),
        (f"{THREAD};Condition.wait (threading.py:327)", STDLIB),
        (f"{ROOT};_find_and_load (<frozen importlib._bootstrap>:1176)", STARTUP),
    ],
)
def test_a_sample_belongs_to_the_innermost_code_that_is_ours_or_a_librarys(
    stack: str, expected: str
) -> None:
    assert owner(stack.split(";")) == expected
