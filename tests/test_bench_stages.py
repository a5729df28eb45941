"""`python -m bench.stages`: the stages' CPU per event by the state they hold,
and with `--memory` their heap alone on the memory part's data, on jemalloc,
read at each count of events asked for."""

import re
import subprocess
import sys

from bench.common import ROOT


def stages_output(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bench.stages", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.stdout


def test_the_heap_of_the_stages_alone_is_read_at_each_count() -> None:
    output = stages_output("--memory", "40000,20000")
    rows = re.findall(r"^ +([\d,]+) +(\d+) +(\d+) +(\d+) +([\d,]+) +([\d,]+)$", output, re.M)
    assert [row[0] for row in rows] == ["20,000", "40,000"]
    for _, rss, live, resident, interactions, customers in rows:
        assert 0 < int(live) <= int(resident) <= int(rss)
        assert int(interactions.replace(",", "")) > 0 and int(customers.replace(",", "")) > 0
    ratio = re.search(r"RSS at 40,000 / at 20,000 events: ([\d.]+)", output)
    assert ratio, output
    assert abs(float(ratio[1]) - int(rows[1][1]) / int(rows[0][1])) < 0.05


def test_the_cpu_per_event_is_shown_by_the_state_held() -> None:
    """The stages' cost per event grows with what they hold; each tenth of the
    run is timed with the interactions held at its end."""
    table = stages_output("--events", "20000", "--rounds", "1").split("by the state held")[1]
    rows = re.findall(r"^ +([\d,]+) +([\d.]+) +([\d,]+)$", table, re.M)
    events = [int(row[0].replace(",", "")) for row in rows]
    held = [int(row[2].replace(",", "")) for row in rows]
    assert len(rows) == 10 and events[-1] == 20_000, table
    assert events == sorted(set(events)) and held == sorted(held) and held[0] > 0, table
    assert all(float(row[1]) > 0 for row in rows), table
