"""`python -m bench`: throughput, latency, memory and scale-out of the pipeline
against the raw ceiling, the Faust floor and the straightforward baseline, on
the real Kafka and Redis of deploy/local. Writes docs/benchmarks.md and exits
1 if a target is missed (2 on bad arguments or a failed run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from bench import data
from bench.common import (
    CHANNEL_TOPICS,
    ROOT,
    Sampler,
    Series,
    cpu_seconds,
    export,
    input_topics,
    leaves,
    machine_busy_seconds,
    percentile,
    process_tree,
    rss_bytes,
    sampling,
    scrape,
    settled_rss,
    total,
    waiting_seconds,
)
from bench.compiled import build
from streams.cli import DEFAULT_PARTITIONS, ensure_topics, worker_command, worker_env
from streams.config import load_settings

PY = sys.executable
CC_KPI = str(Path(PY).with_name("cc-kpi"))
PY_SPY = str(Path(PY).with_name("py-spy"))
SINGLE, BATCHED = "single", "batch100"
BATCH_SIZE = 100
SKIP_PERCENT = 5
"""Timing starts once this share of the events is through: start-up, group
join and the first (possibly huge) batch are not throughput."""
SETTLE_SECONDS = 80.0
"""How long the memory part watches a drained worker for its RSS: longer than
the worker's expiry interval (60 s) and the allocator's release of what that
frees (10 s), so that the lowest reading follows an expiry pass. At the end of
a step the worker holds up to a minute's worth of contacts that are already due
(about 80,000 entries a tick in this data), and a shorter watch read
whatever the phase of the last tick left."""
PREFIX = {SINGLE: "bench.s", BATCHED: "bench.b"}
VARIANTS = ("raw", "floor", "least", "baseline", "pipeline", "mypyc", "head")
"""`head` is the pipeline of the last commit (`git archive HEAD`), to compare
uncommitted work in progress against; `mypyc` the working tree's pipeline with
its per-event code compiled by mypyc (bench/compiled.py); `least` the least
work a Python core can do, in the floor's agent (bench/least.py). All three
are opt-in."""
DEFAULT_VARIANTS = ("raw", "floor", "baseline", "pipeline")
PARTS = ("throughput", "latency", "memory", "scaleout")
TARGETS = {
    "single: pipeline >= 10x baseline": 10.0,
    "single: pipeline >= 80% of Faust floor": 0.8,
    "batch100: pipeline >= 100,000 events/s": 100_000.0,
    "2 workers >= 1.7x one": 1.7,
    "p99 production->/metrics < 1 s at 5,000 events/s": 1.0,
    "RSS at 10M within 10% of RSS at 2M": 0.10,
}


class BenchError(Exception):
    """A run that cannot produce a figure (a worker died, a timeout)."""


@dataclass
class Env:
    kafka_port: int
    controller_port: int
    redis_port: int
    local_dir: Path
    metrics_ports: Iterator[int]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def port(self) -> int:
        """The next of the bench's metrics ports that nothing listens on."""
        for port in self.metrics_ports:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise BenchError("no free port left in --metrics-ports")

    def broker_pid(self) -> int:
        """The local broker's process (kafka.sh writes its pid file)."""
        pid_file = self.local_dir / f"kafka-{self.kafka_port}" / "kafka.pid"
        return int(pid_file.read_text().split()[0])

    def service_env(self) -> dict[str, str]:
        return os.environ | {
            "CC_LOCAL_DIR": str(self.local_dir),
            "CC_KAFKA_PORT": str(self.kafka_port),
            "CC_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "CC_REDIS_PORT": str(self.redis_port),
        }

    def services(self, action: str, *options: str) -> None:
        for script in ("kafka.sh", "redis.sh") if action == "start" else ("redis.sh", "kafka.sh"):
            subprocess.run(
                [str(ROOT / "deploy/local" / script), action, *options],
                env=self.service_env(),
                check=True,
            )


@dataclass
class Run:
    """One measurement: events over a wall-time span and the CPU spent in it."""

    variant: str
    data: str
    events: int
    seconds: float
    cpu_s: float
    peak_rss: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu_s / self.events * 1000


@dataclass
class Results:
    args: argparse.Namespace
    runs: list[Run] = field(default_factory=list)
    latency: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    scaleout: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def rates(self, variant: str, data_set: str) -> list[float]:
        return [r.rate for r in self.runs if r.variant == variant and r.data == data_set]

    def median(self, variant: str, data_set: str) -> float | None:
        rates = self.rates(variant, data_set)
        return statistics.median(rates) if rates else None


# --- processes ----------------------------------------------------------------


def profiled(profile: Path, command: list[str]) -> list[str]:
    """`command` under py-spy, its samples written to `profile` when it ends."""
    return [
        PY_SPY,
        "record",
        "-r",
        "250",
        "--nonblocking",
        "-f",
        "raw",
        "-o",
        str(profile),
        "--",
        *command,
    ]


class Process:
    """A worker subprocess with its CPU sampled every 0.1 s in a thread."""

    def __init__(
        self,
        command: list[str],
        env: dict[str, str],
        log: Path,
        crash: str | None = None,
        cwd: Path = ROOT,
    ) -> None:
        """`crash`: a line in the log that means the process is broken even if it
        still runs (a Faust agent that raised). `cwd` comes first on the sys.path
        of `python -m ...`, before PYTHONPATH: it decides which `streams` runs."""
        self.log = log
        self.crash = crash
        self.out = log.open("wb")
        self.popen = subprocess.Popen(
            command, env=env, stdout=self.out, stderr=subprocess.STDOUT, cwd=cwd
        )
        self.sampler = Sampler(self.popen.pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set() and self.popen.poll() is None:
            self.sampler.sample()
            self._stop.wait(0.1)

    def check(self) -> None:
        if self.popen.poll() is not None or (
            self.crash and self.crash in self.log.read_text(errors="replace")
        ):
            tail = self.log.read_text(errors="replace")[-2000:]
            raise BenchError(f"{self.log.name} failed ({self.popen.returncode}):\n{tail}")

    def stop(self) -> None:
        self._stop.set()
        if self.popen.poll() is None:
            # py-spy writes its profile when the process it samples ends.
            profiled = self.popen.args[0] == PY_SPY
            tree = process_tree(self.popen.pid)
            _signal(tree[1:] if profiled else tree[:1], signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                _signal(process_tree(self.popen.pid), signal.SIGKILL)
                self.popen.wait()
        self._thread.join()
        self.out.close()


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def wait_for(what: str, condition: Any, timeout: float, procs: list[Process]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            proc.check()
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")


# --- Kafka probes -------------------------------------------------------------


def consumer(env: Env) -> KafkaConsumer:
    """CRCs unchecked: kafka-python computes them in pure Python, which was most
    of the memory part's CPU while it read gigabytes of internal topics and
    changelog (py-spy), and nothing is lost on loopback."""
    return KafkaConsumer(
        bootstrap_servers=env.bootstrap, enable_auto_commit=False, group_id=None, check_crcs=False
    )


def partitions(c: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]


class DataTracker:
    """Whether a pipeline has worked through every data message on its internal
    topics: the group has committed past the last message carrying events
    (`e`), contact facts (`f`) or deltas (`d`) on each partition, and no such
    message appeared, over two checks at least 1.5 s apart. The timers'
    heartbeats, live reports and clocks keep coming and do not count."""

    FIELDS = (("by-interaction", "e"), ("by-customer", "f"), ("kpi-deltas", "d"))

    def __init__(self, env: Env, group: str) -> None:
        self.env = env
        self.group = group
        self.admin = KafkaAdminClient(bootstrap_servers=env.bootstrap)
        self.consumer = consumer(env)
        self.tps = {}
        for name, field_name in self.FIELDS:
            for tp in partitions(self.consumer, f"{group}-{name}"):
                self.tps[tp] = field_name
        self.consumer.assign(list(self.tps))
        self.consumer.seek_to_beginning(*self.tps)
        self.last_data: dict[TopicPartition, int] = {}
        self.since = 0.0
        """When the current run of caught-up checks began."""

    def _read(self) -> bool:
        """Read what is new; True if a data message was among it."""
        ends = self.consumer.end_offsets(list(self.tps))
        news = False
        while any(self.consumer.position(tp) < end for tp, end in ends.items()):
            for tp, records in self.consumer.poll(timeout_ms=500, max_records=20_000).items():
                key = f'"{self.tps[tp]}":['.encode()
                for r in records:
                    if (
                        r.value
                        and key in r.value
                        and f'"{self.tps[tp]}":[]'.encode() not in r.value
                    ):
                        self.last_data[tp] = r.offset
                        news = True
        return news

    def drained(self) -> bool:
        news = self._read()
        committed = self.admin.list_group_offsets({self.group: None}).get(self.group, {})
        behind = any(
            tp not in committed or committed[tp].offset <= offset
            for tp, offset in self.last_data.items()
        )
        now = time.time()
        if news or behind or not self.last_data:
            self.since = 0.0
            return False
        if not self.since:
            self.since = now
        return now - self.since >= 1.5

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()


def read_all(env: Env, topic: str, offsets: Any = None) -> Iterator[Any]:
    """Every record of a topic up to its end offsets now (from `offsets(tp,
    begin, end)` per partition if given, else from the beginning)."""
    c = consumer(env)
    try:
        tps = partitions(c, topic)
        c.assign(tps)
        begins, ends = c.beginning_offsets(tps), c.end_offsets(tps)
        for tp in tps:
            c.seek(tp, offsets(begins[tp], ends[tp]) if offsets else begins[tp])
        remaining = {tp for tp in tps if c.position(tp) < ends[tp]}
        deadline = time.monotonic() + 300
        while remaining:
            if time.monotonic() > deadline:
                raise BenchError(f"could not read {topic} to its end")
            for tp, records in c.poll(timeout_ms=500, max_records=20_000).items():
                yield from (r for r in records if r.offset < ends[tp])
                if c.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        c.close()


@dataclass
class Span:
    """Timing starts when `first_count` events were through (start-up and the
    first batch left out) and ends when all `count` were."""

    first: float
    first_count: int
    last: float
    count: int


# --- runs ---------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, env: Env) -> None:
        self.args = args
        self.env = env
        self.results = Results(args)
        self.work = Path(tempfile.mkdtemp(prefix="run-", dir=env.local_dir))
        self.loaded = False
        self.drained = 0.0
        """When the driver last saw a pipeline's internal topics all committed."""

    # data sets

    def preload(self) -> None:
        """Both data sets, once per run (throughput and scale-out read them)."""
        if self.loaded:
            return
        self.loaded = True
        names = {s: input_topics(PREFIX[s]) for s in (SINGLE, BATCHED)}
        asyncio.run(
            data.recreate(self.env.bootstrap, [t for n in names.values() for t in n.values()], 4)
        )
        for data_set, size in ((SINGLE, 1), (BATCHED, BATCH_SIZE)):
            started = time.monotonic()
            stream = data.events(self.size(data_set), self.args.customers, self.args.gap_ms)
            if size > 1:
                stream = data.batched(stream, size)
            count = asyncio.run(data.produce(self.env.bootstrap, names[data_set], stream))
            print(
                f"preloaded {data_set}: {self.size(data_set):,} events in {count:,} messages "
                f"({time.monotonic() - started:.0f}s)",
                flush=True,
            )

    def faust_env(self, app_id: str, port: int, topics: list[str], status: Path) -> dict:
        return os.environ | {
            "BENCH_BOOTSTRAP": self.env.bootstrap,
            "BENCH_APP_ID": app_id,
            "BENCH_TOPICS": ",".join(topics),
            "BENCH_STATUS": str(status),
            "BENCH_WEB_PORT": str(port),
            "BENCH_DATA_DIR": str(self.work / app_id),
            "PYTHONPATH": str(ROOT),
        }

    def pipeline_config(self, app_id: str, prefix: str, clock: str) -> Path:
        """The default configuration, but for where Kafka and Redis are, the
        topics the data set is on, and the clock (see docs/benchmarks.md)."""
        lines = [
            f'[kafka]\nbootstrap = "{self.env.bootstrap}"',
            f'[redis]\nurl = "{self.env.redis_url}"',
            "[topics]",
            *(f'{name} = "{prefix}.{name}"' for name in CHANNEL_TOPICS),
            'kpis = "bench.kpis"\nsla = "bench.sla"\ndeadletter = "bench.deadletter"',
            f'[pipeline]\napp_id = "{app_id}"\ndata_dir = "{self.work / app_id}"',
            f'clock = "{clock}"',
        ]
        path = self.work / f"{app_id}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start_pipeline(
        self, app_id: str, config: Path, port: int, index: int = 0, variant: str = "pipeline"
    ) -> Process:
        """`cc-kpi worker` exactly as in the working tree, compiled with mypyc, or
        of the last commit."""
        env = os.environ | {"CC_METRICS_PORT": str(port)}
        command = [CC_KPI, "--config", str(config), "worker", "--log-level", "warn"]
        if self.args.profile is not None:
            # py-spy samples the process it starts, and `cc-kpi worker` replaces
            # itself with Faust (execv): do what it does before, then start
            # Faust's command line directly.
            self.args.profile.mkdir(parents=True, exist_ok=True)
            settings = load_settings(config, env=env)
            ensure_topics(settings, DEFAULT_PARTITIONS)
            env = worker_env(settings, env) | {"CC_CONFIG": str(config)}
            command = profiled(
                self.args.profile / f"{app_id}-{index}.txt",
                worker_command(argparse.Namespace(log_level="warn")),
            )
        cwd = ROOT
        if variant in ("head", "mypyc"):
            cwd = self.head() if variant == "head" else self.compiled()
            env["PYTHONPATH"] = str(cwd)
        return Process(command, env, self.work / f"{app_id}-{index}.log", cwd=cwd)

    def measure(self, variant: str, data_set: str) -> Run:
        expected = self.size(data_set)
        topics = list(input_topics(PREFIX[data_set]).values())
        app_id = f"bench-{variant}-{uuid.uuid4().hex[:6]}"
        port = self.env.port()
        if variant == "raw":
            command = [PY, "-m", "bench.raw", self.env.bootstrap, app_id, str(expected)]
            command += [str(self.skip(expected)), *topics]
            proc = Process(command, os.environ, self.work / f"{app_id}.log")
            try:
                proc.popen.wait(self.args.timeout)
            finally:
                proc.stop()
            if proc.popen.returncode != 0:
                proc.check()
            out = orjson.loads(proc.log.read_text().strip().splitlines()[-1])
            span = Span(out["first"], out["first_count"], out["last"], out["count"])
            sampler = proc.sampler
        elif variant in ("floor", "least", "baseline"):
            if variant == "baseline":
                expected = min(expected, self.args.baseline_events)
            status = self.work / f"{app_id}.json"
            command = [PY, "-m", "faust", "-A", f"bench.{variant}", "--loop", "uvloop"]
            command += ["worker", "-l", "warn"]
            if self.args.profile is not None:
                self.args.profile.mkdir(parents=True, exist_ok=True)
                command = profiled(self.args.profile / f"{app_id}-{data_set}.txt", command)
            env = self.faust_env(app_id, port, topics, status) | {
                "BENCH_SKIP": str(self.skip(expected))
            }
            proc = Process(command, env, self.work / f"{app_id}.log", crash="Traceback")

            def progress() -> dict | None:
                with contextlib.suppress(OSError, orjson.JSONDecodeError):
                    body = orjson.loads(status.read_bytes())
                    return body if body["count"] >= expected else None
                return None

            try:
                out = wait_for(
                    f"{variant} to count {expected}", progress, self.args.timeout, [proc]
                )
            finally:
                proc.stop()
            span = Span(out["first"], out["first_count"], out["last"], out["count"])
            sampler = proc.sampler
        else:
            procs = self.pipeline(app_id, data_set, [port], variant)
            span = self.pipeline_span(app_id, expected)
            sampler = procs[0].sampler
        if span.last <= span.first or span.count <= span.first_count:
            raise BenchError(f"{variant} on {data_set}: too few events to time, raise --events")
        run = Run(
            variant,
            data_set,
            span.count - span.first_count,
            span.last - span.first,
            sampler.cpu_between(span.first, span.last),
            sampler.peak_rss,
        )
        print(
            f"  {variant:9} {data_set:9} {run.rate:>10,.0f} ev/s  "
            f"{run.cpu_per_1000:.3f} CPU s/1000  peak RSS {run.peak_rss / 2**20:.0f} MiB",
            flush=True,
        )
        return run

    def pipeline(
        self, app_id: str, data_set: str, ports: list[int], variant: str = "pipeline"
    ) -> list[Process]:
        """Run pipeline workers over a pre-loaded data set until every event is
        through every stage; returns the (stopped) workers."""
        prefix, expected = PREFIX[data_set], self.size(data_set)
        config = self.pipeline_config(app_id, prefix, "event")
        procs = [self.start_pipeline(app_id, config, p, i, variant) for i, p in enumerate(ports)]
        try:

            def ingested() -> bool:
                seen = 0.0
                for p in ports:
                    metrics = scrape(p)
                    seen += total(metrics, "cc_events_total") + total(
                        metrics, "cc_late_events_total"
                    )
                return seen >= expected

            wait_for("the pipeline to ingest every event", ingested, self.args.timeout, procs)
            tracker = DataTracker(self.env, app_id)
            try:
                wait_for("the pipeline to drain", tracker.drained, self.args.timeout, procs)
            finally:
                tracker.close()
            self.drained = tracker.since
        finally:
            for proc in procs:
                proc.stop()
        return procs

    def head(self) -> Path:
        """The `streams` package of the last commit, exported once per run."""
        root = self.work / "head"
        if not root.exists():
            root.mkdir()
            export("HEAD", ["streams"], root)
        return root

    def compiled(self) -> Path:
        """The working tree's pipeline compiled with mypyc, built once per run."""
        root = self.work / "mypyc"
        if not root.exists():
            root.mkdir()
            build(root)
        return root

    def skip(self, expected: int) -> int:
        return max(1, expected * SKIP_PERCENT // 100)

    def size(self, data_set: str) -> int:
        return self.args.single_events if data_set == SINGLE else self.args.events

    def pipeline_span(self, app_id: str, expected: int) -> Span:
        """Timing starts at the ingest output (`by-interaction` CreateTime) that
        carried the SKIP_PERCENT-th percent of the events, and ends when the
        driver first saw the group committed past every data message on the
        internal topics (DataTracker): Faust commits every second, so the end
        is late by up to about 1.3 s, which counts against the pipeline."""
        sent = sorted(
            (r.timestamp / 1000, len(orjson.loads(r.value)["e"]))
            for r in read_all(self.env, f"{app_id}-by-interaction")
        )
        skip, done = self.skip(expected), 0
        first = first_count = 0
        for at, n in sent:
            done += n
            if done >= skip:
                first, first_count = at, done
                break
        return Span(first, first_count, self.drained, sum(n for _, n in sent))

    # parts

    def throughput(self) -> None:
        self.preload()
        variants = [v for v in VARIANTS if v in self.args.variants]
        for round_no in range(1, self.args.rounds + 1):
            print(f"round {round_no}/{self.args.rounds}", flush=True)
            order = variants if round_no % 2 else variants[::-1]
            for variant in order:
                for data_set in self.args.data:
                    if variant == "baseline" and data_set == BATCHED:
                        continue
                    self.results.runs.append(self.measure(variant, data_set))

    def scaleout(self) -> None:
        """Two workers against one, on the single-event data set."""
        self.preload()
        figures = {}
        for workers in (1, 2, 1, 2):
            app_id = f"bench-scale{workers}-{uuid.uuid4().hex[:6]}"
            ports = [self.env.port() for _ in range(workers)]
            machine = Series(machine_busy_seconds)
            broker = Series(lambda: cpu_seconds(self.env.broker_pid()))
            broker_waits = Series(lambda: waiting_seconds(self.env.broker_pid()))
            # The broker's ~90 threads take 2 ms a read: once a second is enough
            # over a run of 20 s or more, and costs the workers' cores little.
            with sampling(machine, broker), sampling(broker_waits, every_s=1.0):
                procs = self.pipeline(app_id, SINGLE, ports)
                span = self.pipeline_span(app_id, self.size(SINGLE))
            seconds = span.last - span.first
            each = [p.sampler.cpu_between(span.first, span.last) / seconds for p in procs]
            waits = [p.sampler.waiting_between(span.first, span.last) / seconds for p in procs]
            rate = (span.count - span.first_count) / seconds
            run = {
                "rate": rate,
                "worker_cores": each,
                "worker_waiting": waits,
                "busy_cores": machine.between(span.first, span.last) / seconds,
                "broker_cores": broker.between(span.first, span.last) / seconds,
                "broker_waiting": broker_waits.between(span.first, span.last) / seconds,
            }
            figures.setdefault(workers, []).append(run)
            print(
                f"  scale-out {workers} worker(s): {rate:,.0f} ev/s, cores busy "
                f"{run['busy_cores']:.2f} (workers {' + '.join(f'{c:.2f}' for c in each)}, "
                f"broker {run['broker_cores']:.2f}), waiting for a core "
                f"{' + '.join(f'{w:.2f}' for w in waits)} (broker {run['broker_waiting']:.2f})",
                flush=True,
            )
        one = statistics.median(f["rate"] for f in figures[1])
        two = statistics.median(f["rate"] for f in figures[2])
        self.results.scaleout = {"one": one, "two": two, "ratio": two / one, "runs": figures}

    def latency(self) -> None:
        """Default configuration (wall clock), fresh topics, a steady producer."""
        prefix = f"bench.l{uuid.uuid4().hex[:4]}"
        app_id = f"bench-latency-{uuid.uuid4().hex[:6]}"
        asyncio.run(data.recreate(self.env.bootstrap, list(input_topics(prefix).values()), 4))
        port = self.env.port()
        config = self.pipeline_config(app_id, prefix, "wall")
        proc = self.start_pipeline(app_id, config, port)
        client = redis.Redis.from_url(self.env.redis_url)
        client.flushdb()  # the bench's own Redis: earlier runs' records would count
        log = self.work / f"{app_id}-started.txt"
        metrics_series: list[tuple[float, float]] = []
        redis_series: list[tuple[float, float]] = []
        try:
            wait_for("the worker's /metrics", lambda: scrape(port), 120, [proc])
            time.sleep(5)  # partitions assigned, tables recovered (empty)
            producer = subprocess.Popen(
                [
                    PY,
                    "-m",
                    "bench.latency",
                    self.env.bootstrap,
                    prefix,
                    str(self.args.rate),
                    str(self.args.latency_seconds),
                    str(int(self.args.latency_batched)),
                    str(log),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
            )
            deadline = time.monotonic() + self.args.latency_seconds + 15
            while time.monotonic() < deadline:
                proc.check()
                metrics = scrape(port, only="cc_window_started")
                metrics_series.append(
                    (time.time(), leaves(metrics.get("cc_window_started", ()), "24h"))
                )
                redis_series.append((time.time(), redis_started(client)))
                time.sleep(0.1)
            sent = int(producer.communicate(timeout=60)[0] or 0)
        finally:
            proc.stop()
            client.close()
        produced = [float(line) for line in log.read_text().split()]
        self.results.latency = {
            "rate": self.args.rate,
            "batched": self.args.latency_batched,
            "seconds": self.args.latency_seconds,
            "events": sent,
            "started": len(produced),
            "metrics": visible_latencies(produced, metrics_series),
            "redis": visible_latencies(produced, redis_series),
            "cpu_share": proc.sampler.cpu_between(metrics_series[0][0], metrics_series[-1][0])
            / (metrics_series[-1][0] - metrics_series[0][0]),
        }
        print(f"  latency: {self.results.latency}", flush=True)

    def memory(self) -> None:
        """A fixed population of customers, event time spanning weeks (so every
        state horizon is reached), in batches of 100, fed to one worker in
        steps: each step's events are produced, the worker works through them
        (every stage), and its RSS is read."""
        checkpoints = sorted(self.args.memory_events)
        prefix = f"bench.m{uuid.uuid4().hex[:4]}"
        app_id = f"bench-memory-{uuid.uuid4().hex[:6]}"
        asyncio.run(data.recreate(self.env.bootstrap, list(input_topics(prefix).values()), 4))
        port = self.env.port()
        proc = self.start_pipeline(app_id, self.pipeline_config(app_id, prefix, "event"), port)
        rss: dict[int, int] = {}
        peak: dict[int, int] = {}
        heap: dict[int, tuple[float, float]] = {}
        """Live bytes and resident pages of the worker's heap (jemalloc's counts)."""
        started = time.monotonic()
        done = 0
        # One tracker for every checkpoint, made once the internal topics
        # exist: it reads them on from where it stopped, not from the start
        # again (gigabytes at 10M).
        tracker: DataTracker | None = None
        try:
            for mark in checkpoints:
                command = [PY, "-m", "bench.data", self.env.bootstrap, prefix, str(done)]
                command += [str(mark), str(self.args.customers), str(self.args.memory_gap_ms)]
                subprocess.run(
                    [*command, str(BATCH_SIZE)], cwd=ROOT, check=True, capture_output=True
                )
                done = mark

                def reached(mark: int = mark) -> bool:
                    metrics = scrape(port)
                    seen = total(metrics, "cc_events_total") + total(
                        metrics, "cc_late_events_total"
                    )
                    return seen >= mark

                wait_for(f"{mark:,} events ingested", reached, self.args.timeout, [proc])
                tracker = tracker or DataTracker(self.env, app_id)
                wait_for(f"{mark:,} events through", tracker.drained, self.args.timeout, [proc])
                rss[mark] = settled_rss(proc.popen.pid, SETTLE_SECONDS)
                peak[mark] = rss_bytes(proc.popen.pid)[1]
                metrics = scrape(port)
                heap[mark] = (
                    total(metrics, "cc_heap_allocated_bytes"),
                    total(metrics, "cc_heap_resident_bytes"),
                )
                print(
                    f"  memory: RSS {rss[mark] / 2**20:.0f} MiB after {mark:,} events "
                    f"(peak so far {peak[mark] / 2**20:.0f} MiB; heap: "
                    f"{heap[mark][0] / 2**20:.0f} MiB live, {heap[mark][1] / 2**20:.0f} resident)",
                    flush=True,
                )
        finally:
            if tracker is not None:
                tracker.close()
            proc.stop()
        state = changelog_size(self.env, f"{app_id}-customers-changelog")
        self.results.memory = {
            "rss": rss,
            "peak": peak,
            "heap": heap,
            "seconds": time.monotonic() - started,
            "customers_state": state,
        }

    def run(self) -> Results:
        parts = self.args.only or PARTS
        for part in PARTS:
            if part in parts:
                print(f"== {part}", flush=True)
                getattr(self, part)()
        return self.results


def redis_started(client: redis.Redis) -> float:
    keys = [
        k
        for k in client.keys("cc:kpi:*|24h")
        if k.split(b"|")[1] != b"*" and k.split(b"|")[2] != b"*"
    ]
    values = client.mget(keys) if keys else []
    return float(sum(orjson.loads(v)["counts"]["started"] for v in values if v))


WARM_UP_S = 10
"""Latency: the first seconds of a run, reported apart as well (`steady_p99`):
a worker's first commits and sends after its start (a producer's first
round trips to new partitions) weigh on them."""


def visible_latencies(produced: list[float], series: list[tuple[float, float]]) -> dict:
    """For the k-th started event: the first poll that shows at least k started
    contacts, minus its production time (an upper bound, by the poll interval).
    Besides the percentiles of the whole run: the p99 after its first
    WARM_UP_S, and its worst second (into the run) with that second's largest
    latency, to tell a start-up hold from one mid-run."""
    latencies = []
    i = 0
    for k, at in enumerate(produced, start=1):
        while i < len(series) and series[i][1] < k:
            i += 1
        if i == len(series):
            break
        latencies.append(max(0.0, series[i][0] - at))
    if not latencies:
        return {"seen": 0}
    timed = [(at - produced[0], latency) for at, latency in zip(produced, latencies, strict=False)]
    worst: dict[int, float] = {}
    for into, latency in timed:
        worst[int(into)] = max(latency, worst.get(int(into), 0.0))
    worst_second = max(worst, key=lambda second: worst[second])
    steady = [latency for into, latency in timed if into >= WARM_UP_S]
    return {
        "seen": len(latencies),
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
        "steady_p99": percentile(steady, 0.99) if steady else None,
        "worst_second": worst_second,
        "worst_second_max": worst[worst_second],
    }


def changelog_size(env: Env, topic: str) -> dict[str, float]:
    """Keys and bytes of the latest value per key in a table's changelog."""
    c = consumer(env)
    latest: dict[bytes, int] = {}
    try:
        tps = partitions(c, topic)
        if not tps:
            return {}
        c.assign(tps)
        c.seek_to_beginning(*tps)
        ends = c.end_offsets(tps)
        deadline = time.monotonic() + 300
        while any(c.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                break
            for records in c.poll(timeout_ms=1000, max_records=50_000).values():
                for r in records:
                    if r.value is None:
                        latest.pop(r.key, None)
                    else:
                        latest[r.key] = len(r.key) + len(r.value)
    finally:
        c.close()
    size = sum(latest.values())
    keys = len(latest)
    return {"keys": keys, "bytes": size, "bytes_per_1m": size / keys * 1e6 if keys else 0.0}


# --- command line ----------------------------------------------------------------


def counts(text: str) -> list[int]:
    try:
        values = [int(v.replace("_", "")) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError("counts must be positive")
    return values


def positive(text: str) -> int:
    return counts(text)[0]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--events", type=positive, default=1_000_000, help="events per data set")
    p.add_argument(
        "--single-events",
        type=positive,
        help="events of the single-event data set (default: --events)",
    )
    p.add_argument("--rounds", type=positive, default=3)
    p.add_argument(
        "--data",
        type=lambda s: s.split(","),
        default=[SINGLE, BATCHED],
        help=f"throughput data sets, comma-separated: {SINGLE},{BATCHED}",
    )
    p.add_argument(
        "--baseline-events",
        type=positive,
        default=20_000,
        help="events the (slow) baseline is timed over",
    )
    p.add_argument(
        "--variants",
        type=lambda s: s.split(","),
        default=list(DEFAULT_VARIANTS),
        help=f"comma-separated, of {', '.join(VARIANTS)}",
    )
    p.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    p.add_argument("--quick", action="store_true", help="a small smoke run (minutes)")
    p.add_argument("--customers", type=positive, default=200_000)
    p.add_argument(
        "--gap-ms",
        type=positive,
        default=1,
        help="throughput data sets: mean ms between contacts (1: ~6,000 events per second "
        "of event time, so that a replay at the pipeline's speed moves the event clock "
        "about as fast as a live feed moves the wall clock)",
    )
    p.add_argument("--memory-events", type=counts, default=[2_000_000, 10_000_000])
    p.add_argument("--memory-gap-ms", type=positive, default=2000)
    p.add_argument("--rate", type=positive, default=5000, help="latency: events/s offered")
    p.add_argument("--latency-seconds", type=positive, default=60)
    p.add_argument(
        "--latency-single",
        dest="latency_batched",
        action="store_false",
        help="latency: one message per event (default: a batch per topic every 10 ms)",
    )
    p.add_argument(
        "--timeout",
        type=positive,
        default=3600,
        help="seconds per wait (the memory part's 10M step took over 30 minutes here)",
    )
    p.add_argument("--kafka-port", type=positive, default=24092)
    p.add_argument("--kafka-controller-port", type=positive, default=24093)
    p.add_argument("--redis-port", type=positive, default=24379)
    p.add_argument("--metrics-ports", type=counts, default=[49100, 49199], help="first,last")
    p.add_argument("--local-dir", type=Path, default=ROOT / ".local" / "bench")
    p.add_argument("--keep-services", action="store_true", help="leave Kafka and Redis running")
    p.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument(
        "--profile",
        type=Path,
        help="record every worker (pipeline, floor, least, baseline) with py-spy into this "
        "directory (fold with "
        "python -m bench.profile); py-spy's own CPU counts, so the figures are not "
        "comparable and nothing is written to --output",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.quick:
        args.events, args.single_events, args.rounds = 100_000, 20_000, 1
        args.baseline_events = 3_000
        args.memory_events, args.latency_seconds = [50_000, 100_000], 15
    args.single_events = args.single_events or args.events
    if set(args.data) - {SINGLE, BATCHED}:
        print(f"bench: --data takes {SINGLE} and/or {BATCHED}", file=sys.stderr)
        return 2
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        print(f"bench: unknown variant(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args.profile is not None and not Path(PY_SPY).is_file():
        print(
            f"bench: --profile needs py-spy ({PY_SPY}): pip install -e '.[bench]'", file=sys.stderr
        )
        return 2
    first_port, last_port = [*args.metrics_ports, args.metrics_ports[0] + 99][:2]
    env = Env(
        args.kafka_port,
        args.kafka_controller_port,
        args.redis_port,
        args.local_dir,
        iter(range(first_port, last_port + 1)),
    )
    args.command = shlex.join(
        ["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])]
    )
    env.local_dir.mkdir(parents=True, exist_ok=True)
    env.services("start")
    bench = Bench(args, env)
    done = False
    try:
        results = bench.run()
        done = True
    except BenchError as error:
        print(f"bench: {error} (logs kept in {bench.work})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if not args.keep_services:
            # Every run writes new topics, gigabytes for the memory part: of no
            # use to the next run once this one went through.
            env.services("stop", *(["--purge"] if done else []))
    shutil.rmtree(bench.work, ignore_errors=True)

    from bench.report import write  # the report reads this module's results

    if args.profile is not None:
        print(f"profiles in {args.profile}; {args.output} left as it was")
        return 0
    met = write(results, args.output)
    print(f"wrote {args.output}")
    return 0 if all(met.values()) else 1
