"""Real failures, real processes: a fixed stream of 50,000+ events through
workers that are killed, a broker and a Redis that go away, and producers that
deliver twice. Each run's final KPIs (Redis snapshot, latest cc.kpis, the KPI
series of /metrics) must equal those of an undisturbed run of the same stream:
nothing lost, nothing counted twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests import naive
from tests.integration.conftest import flush_redis_db
from tests.integration.pipeline_runner import (
    INPUTS,
    OUTPUTS,
    Deployment,
    Samples,
    Worker,
    feed_messages,
    wait_for,
)
from tests.integration.test_pipeline import encoded, problems

pytestmark = pytest.mark.slow

Message = tuple[str, bytes | None, bytes]

PROCESS_LOCAL = (
    "cc_events",
    "cc_consumer_gaps",
    "cc_deadletter",
    "cc_dropped_retractions",
    "cc_duplicate",
    "cc_late",
    "cc_unknown_interaction",
    "cc_expired",
    "cc_redelivered",
    "cc_redis",
    "cc_snapshot_timestamp",
    "cc_watermark",
    "cc_worker_up",
    "cc_consumer_lag",
    "cc_input_ahead",
    "cc_input_skew",
    "cc_internal_backlog",
    "cc_label",
    "cc_sla_breached",
)
"""Series about a process, not about the contacts: they restart with it, or
(lags, the internal backlog) measure work in flight, which with two workers is
never quite nothing: each counts the other's partitions from their committed
offsets, a second or so behind. (And
the SLA state, which below the minimum volume holds whatever it was: it depends
on the path the snapshots took, not only on the contacts; cc.sla is checked by
tests/integration/test_pipeline.py.)"""


@pytest.fixture(scope="module")
def stream() -> list[tuple[str, dict[str, Any]]]:
    return feed_messages(seed=23, customers=3_000, gap_ms=400, contacts=11_500, at_least=50_000)


@pytest.fixture(scope="module")
def facts(stream: list[tuple[str, dict[str, Any]]]) -> naive.Facts:
    return naive.facts_of(stream)


@dataclass
class Outputs:
    redis: dict[str, Any]
    kpis: dict[str, Any]
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    local: dict[str, float] = field(default_factory=dict)
    """The process-local counters of the live workers (`process_local`)."""


def kpi_fields(records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What a record says about the contacts (not when it was written)."""
    return {
        key: {field: r[field] for field in ("window_start", "window_end", "counts", "kpis")}
        for key, r in records.items()
    }


def live_samples(workers: list[Worker]) -> list[Samples]:
    """One scrape of each live worker's /metrics."""
    return [w.samples() for w in workers if w.process is not None and w.process.poll() is None]


def kpi_series(scrapes: list[Samples]) -> Samples:
    """The series about the contacts, summed over the workers."""
    totals: Samples = defaultdict(float)
    for samples in scrapes:
        for (name, labels), value in samples.items():
            if name.startswith("cc_") and not name.startswith(PROCESS_LOCAL):
                totals[(name, labels)] += value
    return dict(totals)


def kpi_channels(samples: Samples) -> set[str]:
    """The channels whose KPIs a scrape (or a sum of scrapes) serves."""
    return {
        value
        for name, labels in samples
        if name.startswith("cc_kpi_")
        for label, value in labels
        if label == "channel"
    }


def served_twice(scrapes: list[Samples]) -> list[str]:
    """Channels whose KPIs two workers serve: the old owner until its side of a
    rebalance is over, the new one as soon as it has adopted them."""
    seen = Counter(channel for samples in scrapes for channel in kpi_channels(samples))
    return sorted(channel for channel, count in seen.items() if count > 1)


def settled_outputs(deployment: Deployment, facts: naive.Facts, timeout: float = 240) -> Outputs:
    """Wait until the snapshot equals the naive KPIs and every output has caught
    up with it, then read all three."""
    last: list[list[str]] = [[]]

    def correct() -> dict[str, Any] | None:
        """Equal to the naive KPIs, and still the same a few seconds later: the
        live queue gauges follow the counts by a report or two."""
        records = deployment.redis_records()
        last[0] = problems(records, facts)
        if last[0]:
            return None
        time.sleep(3)
        again = deployment.redis_records()
        return records if kpi_fields(again) == kpi_fields(records) else None

    try:
        records = wait_for(correct, timeout, "the Redis snapshot to equal the naive KPIs")
    except AssertionError as error:
        for worker in deployment.workers:
            worker.dump_stacks()
        logs = "\n".join(f"--- {w.log.name} ---\n" + w.log_tail(150) for w in deployment.workers)
        raise AssertionError(f"{error}\nfirst differences: {last[0][:15]}\n{logs}") from None
    redis = kpi_fields(records)

    def kpis_caught_up() -> dict[str, Any] | None:
        latest = kpi_fields(deployment.latest_kpi_records())
        return latest if latest == redis else None

    kpis = wait_for(kpis_caught_up, 30, "cc.kpis to carry the same records as Redis")

    channels = {key.split("|", 1)[0] for key in redis}

    def metrics_stable() -> dict | None:
        """The KPIs of every channel of the snapshot served, each by one
        worker (after a rebalance, by its new owner once it has recovered the
        channel's board and its clock, and no longer by its old one), and the
        same a moment later."""
        scrapes = live_samples(deployment.workers)
        first = kpi_series(scrapes)
        served = kpi_channels(first)
        if not channels <= served:
            unsettled[0] = f"channels not served: {sorted(channels - served)}"
            return None
        if twice := served_twice(scrapes):
            unsettled[0] = f"channels served by two workers (a handover under way): {twice}"
            return None
        time.sleep(1.5)
        second = kpi_series(live_samples(deployment.workers))
        moved = sorted(
            (k for k in set(first) | set(second) if first.get(k) != second.get(k)), key=str
        )
        unsettled[0] = "changed between scrapes: " + "; ".join(
            f"{k}: {first.get(k)} -> {second.get(k)}" for k in moved[:10]
        )
        return first if not moved else None

    unsettled = [""]
    try:
        metrics = wait_for(metrics_stable, 60, "/metrics to settle")
    except AssertionError as error:
        logs = "\n".join(f"--- {w.log.name} ---\n" + w.log_tail(80) for w in deployment.workers)
        raise AssertionError(f"{error}\n{unsettled[0]}\n{logs}") from None
    local: dict[str, float] = {}
    for worker in deployment.workers:
        for name, value in process_local(worker).items():
            local[name] = local.get(name, 0) + value
    return Outputs(redis, kpis, metrics, local)


def assert_same(run: Outputs, reference: Outputs, workers: Sequence[Worker] = ()) -> None:
    """`workers`: the live ones, whose process-local counters (late events,
    redeliveries, dropped corrections) a failure message shows."""
    for name in ("redis", "kpis", "metrics"):
        got, want = getattr(run, name), getattr(reference, name)
        differing = sorted((k for k in set(got) | set(want) if got.get(k) != want.get(k)), key=str)
        assert not differing, (
            f"{name}: {len(differing)} differ from the undisturbed run:\n"
            + ("\n".join(f"{k}: {_diff(got.get(k), want.get(k))}" for k in differing[:8]))
            + "".join(f"\n{w.log.name}: {process_local(w)}" for w in workers)
        )


def process_local(worker: Worker) -> dict[str, float]:
    if worker.process is None or worker.process.poll() is not None:
        return {}
    totals: dict[str, float] = defaultdict(float)
    for (name, labels), value in worker.samples().items():
        if name.startswith(
            ("cc_late", "cc_redelivered", "cc_dropped", "cc_duplicate", "cc_consumer_gaps")
        ):
            totals[name + str(dict(labels))] += value
    return dict(totals)


def _diff(got: Any, want: Any) -> str:
    """Only what differs, for the failure message."""
    if isinstance(got, dict) and isinstance(want, dict):
        parts = []
        for field in sorted(set(got) | set(want)):
            if got.get(field) != want.get(field):
                parts.append(f"{field}: {_diff(got.get(field), want.get(field))}")
        return "{" + ", ".join(parts) + "}"
    return f"{got!r} != {want!r}"


def consumed(workers: list[Worker]) -> float:
    """Events the live workers' ingest stage has taken in so far."""
    return sum(
        v
        for w in workers
        if w.process is not None and w.process.poll() is None
        for (name, _), v in w.samples().items()
        if name == "cc_events_total"
    )


def kill(worker: Worker) -> None:
    assert worker.process is not None
    worker.process.kill()  # SIGKILL: no shutdown hook, no final commit or snapshot
    worker.process.wait()


@pytest.fixture(scope="module")
def new_deployment(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, redis_url: str, kafka_admin
) -> Iterator[Callable[[str], Deployment]]:
    made: list[Deployment] = []

    def make(name: str, **pipeline: Any) -> Deployment:
        # One deployment at a time: they share the Redis DB.
        for earlier in made:
            earlier.stop_all()
        flush_redis_db(redis_url)
        suffix = f"{name}.{random.randrange(16**8):08x}"
        topics = {logical: f"{logical}.faults.{suffix}" for logical in (*INPUTS, *OUTPUTS)}
        kafka_admin.create_topics(
            {real: {"num_partitions": 4, "replication_factor": 1} for real in topics.values()},
            timeout_ms=30_000,
            wait_for_metadata=True,
        )
        deployment = Deployment(
            tmp_path_factory.mktemp(name), kafka_bootstrap, redis_url, topics, **pipeline
        )
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.stop_all()


@pytest.fixture(scope="module")
def reference(new_deployment, stream, facts) -> Outputs:
    """The undisturbed run."""
    deployment = new_deployment("reference")
    deployment.start_worker()
    deployment.produce(encoded(stream))
    outputs = settled_outputs(deployment, facts)
    deployment.stop_all()
    return outputs


def test_the_reference_run_is_complete(reference: Outputs) -> None:
    assert len(reference.redis) > 50
    assert any(name.endswith("_total") for name, _ in reference.metrics)


def test_the_reference_run_dropped_and_judged_late_nothing(reference: Outputs) -> None:
    """The other runs are compared with it, so it must be right: undisturbed,
    no correction comes after its bucket settled and no event is late (the
    stream is within the lateness), or its settled totals are off."""
    off = {
        name: value
        for name, value in reference.local.items()
        if name.startswith(("cc_dropped", "cc_late")) and value
    }
    assert not off, off


def test_kill_9_mid_stream_then_restart(new_deployment, stream, facts, reference) -> None:
    deployment = new_deployment("kill")
    messages = encoded(stream)
    worker = deployment.start_worker()
    deployment.produce(messages)
    wait_for(lambda: consumed([worker]) >= 0.4 * len(stream), 120, "40% of the stream")
    kill(worker)
    deployment.start_worker()
    assert_same(settled_outputs(deployment, facts), reference, deployment.workers)


def test_kill_9_one_of_two_workers(new_deployment, stream, facts, reference, kafka_admin) -> None:
    deployment = new_deployment("rebalance")
    first, second = deployment.start_worker(), deployment.start_worker()
    deployment.produce(encoded(stream))
    wait_for(lambda: consumed([first, second]) >= 0.3 * len(stream), 120, "30% of the stream")
    kill(second)
    # The survivor takes over the dead worker's partitions once the group
    # coordinator gives up on it, and finishes the stream alone.
    survivor = settled_outputs(deployment, facts)
    assert_same(survivor, reference, deployment.workers)
    deployment.start_worker()

    def both_in_the_group() -> bool:
        group = kafka_admin.describe_groups([deployment.app_id])[deployment.app_id]
        return group["group_state"] == "Stable" and len(group["members"]) == 2

    # The rejoin rebalances the partitions again; until it is over, the old
    # outputs are still there to be read.
    wait_for(both_in_the_group, 120, "the restarted worker in the consumer group")
    assert_same(settled_outputs(deployment, facts), reference, deployment.workers)


def test_broker_down_for_30s_mid_stream(
    new_deployment, stream, facts, reference, services: Callable[[str, str], None]
) -> None:
    deployment = new_deployment("broker")
    messages = encoded(stream)
    half = len(messages) // 2
    worker = deployment.start_worker()
    deployment.produce(messages[:half])
    wait_for(lambda: consumed([worker]) >= 0.2 * len(stream), 120, "20% of the stream")
    services("kafka", "stop")
    try:
        time.sleep(30)
    finally:
        # Also when the test fails: the tests after it share the broker.
        services("kafka", "start")
    deployment.produce(messages[half:])
    assert worker.process is not None and worker.process.poll() is None, "the worker died"
    assert_same(settled_outputs(deployment, facts), reference, deployment.workers)


def test_a_worker_whose_kafka_is_gone_stops_within_its_stop_timeout(
    new_deployment, stream, services: Callable[[str, str], None]
) -> None:
    """Every step of a stop waits for Kafka; without it, the worker gives up
    after `pipeline.stop_timeout` and says so, rather than wait for a SIGKILL."""
    deployment = new_deployment("stop", stop_timeout="5s")
    worker = deployment.start_worker()
    deployment.produce(encoded(stream)[:5000])
    wait_for(lambda: consumed([worker]) > 0, 60, "the worker to take events")
    process = worker.process
    assert process is not None
    services("kafka", "stop")
    try:
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError("no exit 30 s after SIGTERM") from None
        took = time.monotonic() - started
    finally:
        services("kafka", "start")
    assert status == os.EX_TEMPFAIL, worker.log_tail(40)
    assert 5 <= took < 15
    assert "stop not done within 5s (pipeline.stop_timeout)" in worker.log_tail(40)


def test_redis_down_for_30s_mid_stream(
    new_deployment, stream, facts, reference, services: Callable[[str, str], None]
) -> None:
    deployment = new_deployment("redis")
    messages = encoded(stream)
    half = len(messages) // 2
    worker = deployment.start_worker()
    deployment.produce(messages[:half])
    wait_for(lambda: consumed([worker]) >= 0.2 * len(stream), 120, "20% of the stream")
    # cc_redis_errors_total counts failed snapshot writes, and the snapshots
    # begin once the event clock has started, which on a loaded machine can
    # be after 20% of the stream.
    wait_for(deployment.redis_records, 60, "the first snapshot in Redis")
    services("redis", "stop")
    try:
        deployment.produce(messages[half:])

        def outage_shown() -> bool:
            samples = worker.samples()
            return (
                samples.get(("cc_redis_up", ())) == 0
                and samples.get(("cc_redis_errors_total", ()), 0) > 0
            )

        wait_for(outage_shown, 20, "/metrics to show Redis down")
        # The pipeline keeps computing: the stream is consumed while Redis is down.
        wait_for(lambda: consumed([worker]) >= len(stream), 60, "the whole stream to be consumed")
        time.sleep(max(0, 30 - 20))
    finally:
        # Also when the test fails: the tests after it share Redis.
        services("redis", "start")
    assert_same(settled_outputs(deployment, facts), reference, deployment.workers)
    assert worker.samples().get(("cc_redis_up", ())) == 1


def redelivered(messages: list[Message], seed: int = 9) -> tuple[list[Message], int]:
    """The stream as a retrying producer delivers it: 5% of messages twice in a
    row, 5% again a little later (within the lateness), and the first 2% again
    at the very end, long after the lateness. Returns it and the count of those
    last, too-late copies."""
    rng = random.Random(seed)
    out: list[Message] = []
    later: list[tuple[int, Message]] = []
    for i, message in enumerate(messages):
        out.append(message)
        roll = rng.random()
        if roll < 0.05:
            out.append(message)
        elif roll < 0.10:
            later.append((i + rng.randrange(50, 500), message))
        while later and later[0][0] <= i:
            out.append(later.pop(0)[1])
        later.sort(key=lambda item: item[0])
    out.extend(m for _, m in later)
    too_late = messages[: len(messages) // 50]
    return out + too_late, len(too_late)


def test_producer_retries_duplicates_and_late_copies(
    new_deployment, stream, facts, reference
) -> None:
    deployment = new_deployment("retries")
    messages, too_late = redelivered(encoded(stream))
    worker = deployment.start_worker()
    deployment.produce(messages)
    assert_same(settled_outputs(deployment, facts), reference, deployment.workers)
    samples = worker.samples()
    duplicates = sum(v for (n, _), v in samples.items() if n == "cc_duplicate_events_total")
    late = sum(v for (n, _), v in samples.items() if n == "cc_late_events_total")
    assert duplicates > 0.05 * len(stream)
    assert late > 0, "copies beyond the lateness are dropped and counted as late"
    assert too_late > 0
