"""`python -m bench.stages --memory`: the stages alone on the memory part's
data, on jemalloc, read at each count of events asked for."""

import re
import subprocess
import sys

from bench.common import ROOT


def test_the_heap_of_the_stages_alone_is_read_at_each_count() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.stages", "--memory", "40000,20000"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    rows = re.findall(r"^ +([\d,]+) +(\d+) +(\d+) +(\d+) +([\d,]+) +([\d,]+)$", done.stdout, re.M)
    assert [row[0] for row in rows] == ["20,000", "40,000"]
    for _, rss, live, resident, interactions, customers in rows:
        assert 0 < int(live) <= int(resident) <= int(rss)
        assert int(interactions.replace(",", "")) > 0 and int(customers.replace(",", "")) > 0
    ratio = re.search(r"RSS at 40,000 / at 20,000 events: ([\d.]+)", done.stdout)
    assert ratio, done.stdout
    assert abs(float(ratio[1]) - int(rows[1][1]) / int(rows[0][1])) < 0.05
