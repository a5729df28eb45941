"""What every part of the benchmark shares: topic names, process accounting,
/metrics and consumer-group probes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
CHANNEL_TOPICS = ("calls", "chats", "emails", "social", "surveys")
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def export(rev: str, paths: Iterable[str], into: Path) -> None:
    """`paths` of commit `rev` into the directory `into` (git archive)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, *paths], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def measured(module: str, tree: Path, count: int) -> dict[str, Any]:
    """`module.measure(count)` in a fresh process that imports from `tree`
    first (its working directory), then from this checkout (`tests`). It calls
    `measure` itself: `python -m` cannot run a compiled module."""
    code = f"import json; from {module} import measure; print(json.dumps(measure({count})))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
        text=True,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def input_topics(prefix: str) -> dict[str, str]:
    """Logical input name (config key) -> topic name, for one pre-loaded data set."""
    return {name: f"{prefix}.{name}" for name in CHANNEL_TOPICS}


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        kids: list[int] = []
        for task in tasks:
            text = (task / "children").read_text().split()
            kids.extend(int(k) for k in text)
        return kids
    except OSError:
        return []


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(_children(current))
    return tree


def cpu_seconds(pid: int, tree: list[int] | None = None) -> float:
    """User + system CPU of a process and its live descendants (and the children
    they have waited for), from /proc/<pid>/stat. `tree`: its `process_tree`,
    when already read."""
    total = 0
    for member in tree or process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state (field 3): utime, stime, cutime, cstime are fields 14..17.
        total += sum(int(x) for x in fields[11:15])
    return total / TICKS


def rss_bytes(pid: int, tree: list[int] | None = None) -> tuple[int, int]:
    """(current RSS, peak RSS) summed over the process tree."""
    rss = peak = 0
    for member in tree or process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                peak += int(line.split()[1]) * 1024
    return rss, peak


def settled_rss(pid: int, seconds: float, every: float = 0.5) -> int:
    """The lowest RSS of a process tree over `seconds` of idling: what it keeps
    once done, rather than whatever a last flush or the next free-memory
    release (every 10 s in the worker) happens to be in the middle of."""
    lowest = rss_bytes(pid)[0]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(every)
        lowest = min(lowest, rss_bytes(pid)[0])
    return lowest


def waiting_seconds(pid: int, tree: list[int] | None = None) -> float:
    """How long the threads of a process tree were ready to run but waited for
    a core (the second field of /proc/<pid>/task/<tid>/schedstat): what tells a
    process short of CPU from one waiting for work. Threads that have ended drop
    out of the count, so it is read over processes that run on."""
    total = 0
    for member in tree or process_tree(pid):
        try:
            tasks = list(Path(f"/proc/{member}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError):
                continue
    return total / 1e9


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: all but idle and
    I/O wait)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICKS


def _between(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """How much a count sampled over time grew between two instants."""
    before = [count for t, count in samples if t <= start] or [samples[0][1]]
    after = [count for t, count in samples if t >= end] or [samples[-1][1]]
    return after[0] - before[-1]


@dataclass
class Sampler:
    """CPU of a process tree over time, and its wait for a core, so that both
    can be read between two instants afterwards (start and end are known only
    later)."""

    pid: int
    samples: list[tuple[float, float]] = field(default_factory=list)
    waits: list[tuple[float, float]] = field(default_factory=list)
    peak_rss: int = 0

    def sample(self) -> None:
        now, tree = time.time(), process_tree(self.pid)
        self.samples.append((now, cpu_seconds(self.pid, tree)))
        self.waits.append((now, waiting_seconds(self.pid, tree)))
        self.peak_rss = max(self.peak_rss, rss_bytes(self.pid, tree)[1])

    def cpu_between(self, start: float, end: float) -> float:
        return _between(self.samples, start, end)

    def waiting_between(self, start: float, end: float) -> float:
        return _between(self.waits, start, end)


@dataclass
class Series:
    """A CPU count over time, for any source (the machine's busy time, the
    broker's CPU), read between two instants afterwards, as `Sampler`'s."""

    read: Callable[[], float]
    samples: list[tuple[float, float]] = field(default_factory=list)

    def sample(self) -> None:
        self.samples.append((time.time(), self.read()))

    def between(self, start: float, end: float) -> float:
        return _between(self.samples, start, end)


@contextlib.contextmanager
def sampling(*series: Series, every_s: float = 0.1) -> Iterator[None]:
    """`series` sampled in a thread while the block runs, and once at its end."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            for one in series:
                one.sample()
            stop.wait(every_s)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for one in series:
            one.sample()


def scrape(
    port: int, timeout: float = 2.0, only: str | None = None
) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The samples of a worker's /metrics by name; empty while it does not answer.
    With `only`, just the samples of that metric: parsing all of them costs the
    latency driver a third of a core at ten scrapes a second, on the cores the
    worker needs."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
            text = r.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    if only is not None:
        text = "".join(line for line in text.splitlines(True) if line.startswith(only + "{"))
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(value for _, value in samples.get(name, ()))


def leaves(rows: Iterable[tuple[dict[str, str], float]], window: str) -> float:
    """Sum over the leaf records (no roll-ups) of one window."""
    return sum(
        v
        for labels, v in rows
        if labels.get("window") == window
        and labels.get("queue") != "*"
        and labels.get("network") != "*"
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]
