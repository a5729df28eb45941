"""The /metrics exposition, built at scrape time from the current state.

A custom collector (rather than gauges set on every event) costs nothing per
event: it reads the records and counters once per scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from streams.config import NO_NETWORK
from streams.core.aggregate import COUNTS, FRT_BUCKETS_SECONDS, Aggregate
from streams.core.contribution import Key
from streams.core.labels import NETWORK, QUEUE, LabelCap
from streams.pipeline.heap import Heap
from streams.pipeline.stages import Stats

KEY_LABELS: Final = ("channel", "queue", "network")
WINDOW_LABELS: Final = (*KEY_LABELS, "window")

KPI_METRICS: Final = {
    "volume": ("cc_kpi_volume", "Contacts offered (contact.started) in the window."),
    "frt_mean_seconds": ("cc_kpi_frt_mean_seconds", "Mean first response time."),
    "frt_p50_seconds": (
        "cc_kpi_frt_p50_seconds",
        "Median first response time (sketch, 0.5% error).",
    ),
    "frt_p90_seconds": ("cc_kpi_frt_p90_seconds", "90th percentile first response time."),
    "frt_p99_seconds": ("cc_kpi_frt_p99_seconds", "99th percentile first response time."),
    "asa_seconds": ("cc_kpi_asa_seconds", "Average speed of answer (mean FRT of calls)."),
    "next_response_mean_seconds": (
        "cc_kpi_next_response_mean_seconds",
        "Mean time from a customer message to the next agent reply.",
    ),
    "next_response_p90_seconds": (
        "cc_kpi_next_response_p90_seconds",
        "90th percentile next response time.",
    ),
    "answer_rate": ("cc_kpi_answer_ratio", "Answered / (answered + abandoned)."),
    "service_level": (
        "cc_kpi_service_level_ratio",
        "Answered within the FRT target / (answered + abandoned).",
    ),
    "abandonment_rate": ("cc_kpi_abandonment_ratio", "Abandoned / (answered + abandoned)."),
    "escalation_rate": ("cc_kpi_escalation_ratio", "Ended contacts that were escalated / ended."),
    "transfer_rate": ("cc_kpi_transfer_ratio", "Ended contacts that were transferred / ended."),
    "fcr_rate": ("cc_kpi_fcr_ratio", "Resolved on first contact / resolved."),
    "repeat_contact_rate": ("cc_kpi_repeat_contact_ratio", "Repeat contacts / started."),
    "contacts_per_resolution": ("cc_kpi_contacts_per_resolution", "Started / resolved."),
    "aht_seconds": ("cc_kpi_aht_seconds", "Average handle time (talk + hold + wrap)."),
    "resolution_time_mean_seconds": (
        "cc_kpi_resolution_time_mean_seconds",
        "Mean time from start to resolution.",
    ),
    "reopen_rate": ("cc_kpi_reopen_ratio", "Reopened / resolved."),
    "csat": ("cc_kpi_csat_ratio", "Share of CSAT answers of 4 or 5."),
    "nps": ("cc_kpi_nps_score", "Net promoter score, -100..100."),
    "ces": ("cc_kpi_ces_score", "Mean customer effort score, 1..7 (7 = very easy)."),
}

LIVE_METRICS: Final = {
    "queue_now": ("cc_queue_contacts", "Contacts waiting for a first response now."),
    "oldest_waiting_seconds": (
        "cc_queue_oldest_wait_seconds",
        "Wait of the oldest waiting contact.",
    ),
    "at_risk": (
        "cc_queue_at_risk_contacts",
        "Waiting contacts past the at-risk share of the FRT target.",
    ),
}

TARGET_METRICS: Final = {
    "service_level": "cc_target_service_level_ratio",
    "frt_seconds": "cc_target_frt_seconds",
    "answer_rate": "cc_target_answer_ratio",
    "abandonment_rate": "cc_target_abandonment_ratio",
    "fcr_rate": "cc_target_fcr_ratio",
    "escalation_rate": "cc_target_escalation_ratio",
    "csat": "cc_target_csat_ratio",
}


@dataclass(slots=True)
class Exposition:
    """Everything /metrics shows, gathered at scrape time."""

    records: list[dict[str, Any]]
    settled: Iterable[tuple[Key, Aggregate]]
    sla: Iterable[tuple[str, str, bool]]
    stats: Stats
    min_contacts: int
    clock_ms: int | None
    snapshot_ms: int | None
    redis_up: bool | None
    redis_errors: int
    lag: dict[tuple[str, int], int] = field(default_factory=dict)
    caps: LabelCap | None = None
    board_partitions: int = 0
    internal_backlog: int | None = None
    internal_backlog_items: int | None = None
    input_held: bool = False
    input_skew_ms: int = 0
    inputs_ahead: int = 0
    heap: Heap | None = None


def _labels(record: dict[str, Any]) -> list[str]:
    network = record["network"] if record["network"] is not None else NO_NETWORK
    return [record["channel"], record["queue"], network]


class KpiCollector(Collector):
    def __init__(self, source: Callable[[], Exposition]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        exp = self.source()
        settled = list(exp.settled)
        yield from self._windows(exp.records)
        yield from self._per_key(exp.records, exp.min_contacts)
        yield from self._sla(exp.sla)
        yield from self._settled(settled)
        yield from self._health(exp)
        if exp.caps is not None:
            # Only the channels whose board this worker holds (their keys).
            held = {key[0] for key, _ in settled} | {r["channel"] for r in exp.records}
            yield from self._caps(exp.caps, held)

    def _windows(self, records: list[dict[str, Any]]) -> Iterator[Metric]:
        kpi = {
            name: GaugeMetricFamily(m, h, labels=WINDOW_LABELS)
            for name, (m, h) in KPI_METRICS.items()
        }
        counts = {
            name: GaugeMetricFamily(
                f"cc_window_{name}",
                f"Count of {name.replace('_', ' ')} in the window.",
                labels=WINDOW_LABELS,
            )
            for name in COUNTS
        }
        for record in records:
            # One label dict for the record's ~50 samples (add_metric makes one each).
            labels = dict(zip(WINDOW_LABELS, [*_labels(record), record["window"]], strict=True))
            for name, family in kpi.items():
                value = record["kpis"][name]
                if value is not None:
                    family.samples.append(Sample(family.name, labels, value))
            for name, family in counts.items():
                family.samples.append(Sample(family.name, labels, record["counts"][name]))
        yield from kpi.values()
        yield from counts.values()

    def _per_key(self, records: list[dict[str, Any]], min_contacts: int) -> Iterator[Metric]:
        live = {
            name: GaugeMetricFamily(m, h, labels=KEY_LABELS)
            for name, (m, h) in LIVE_METRICS.items()
        }
        targets = {
            name: GaugeMetricFamily(
                metric, f"SLA target for {name.replace('_', ' ')}.", labels=KEY_LABELS
            )
            for name, metric in TARGET_METRICS.items()
        }
        guard = GaugeMetricFamily(
            "cc_target_min_contacts",
            "Contacts an alerting window must hold before a KPI can breach.",
            labels=KEY_LABELS,
        )
        seen: set[tuple[str, ...]] = set()
        for record in records:
            labels = _labels(record)
            if tuple(labels) in seen:
                continue
            seen.add(tuple(labels))
            for name, family in live.items():
                value = record["kpis"][name]
                if value is not None:
                    family.add_metric(labels, value)
            for name, family in targets.items():
                if name in record["targets"]:
                    family.add_metric(labels, record["targets"][name])
            guard.add_metric(labels, min_contacts)
        yield from live.values()
        yield from targets.values()
        yield guard

    def _sla(self, states: Iterable[tuple[str, str, bool]]) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "cc_sla_breached",
            "1 while the KPI breaches its SLA target over the alerting window, else 0.",
            labels=("kpi", *WINDOW_LABELS),
        )
        for record_key, kpi, breached in states:
            channel, queue, network, window = record_key.split("|")
            family.add_metric([kpi, channel, queue, network, window], 1 if breached else 0)
        yield family

    def _settled(self, settled: Iterable[tuple[Key, Aggregate]]) -> Iterator[Metric]:
        counters = {
            name: CounterMetricFamily(
                f"cc_{name}",
                f"Settled count of {name.replace('_', ' ')} (final once older "
                "than the allowed lateness).",
                labels=KEY_LABELS,
            )
            for name in COUNTS
        }
        frt = HistogramMetricFamily(
            "cc_frt_seconds",
            "First response time of settled answered contacts.",
            labels=KEY_LABELS,
        )
        for key, agg in settled:
            labels = list(key)
            for i, name in enumerate(COUNTS):
                counters[name].add_metric(labels, agg.values[i])
            cumulative = 0
            buckets = []
            for bound, n in zip(
                (*FRT_BUCKETS_SECONDS, float("inf")), agg.frt_histogram(), strict=True
            ):
                cumulative += n
                buckets.append((_le(bound), cumulative))
            frt.add_metric(labels, buckets, agg.sum("frt_ms_sum") / 1000)
        yield from counters.values()
        yield frt

    def _health(self, exp: Exposition) -> Iterator[Metric]:
        stats = exp.stats
        families = [
            _counter("cc_events", "Valid events consumed.", ("topic",), stats.events),
            _counter(
                "cc_deadletter",
                "Rejected messages sent to the dead-letter topic.",
                ("topic", "reason"),
                stats.deadletters,
            ),
            _counter(
                "cc_late_events",
                "Events older than the allowed lateness, not counted.",
                ("topic",),
                stats.late,
            ),
            _counter(
                "cc_redelivered_messages",
                "Input messages of a stage whose deltas it sent again (re-processing after "
                "a crash or a rebalance), recognised by the board and not applied twice.",
                ("stage",),
                stats.redelivered,
            ),
            _counter(
                "cc_consumer_gaps",
                "Times a stage found messages of a partition missing (lost by the "
                "consumer around a rebalance) and read them from the log.",
                ("topic",),
                stats.input_gaps,
            ),
            _counter(
                "cc_dropped_retractions",
                "Corrections that came after the totals they would lower had settled "
                "(later than the allowed lateness); those totals keep the earlier count.",
                ("channel", "measure"),
                stats.dropped_retractions,
            ),
            _counter(
                "cc_input_ahead_pauses",
                "Times an input partition was paused for running more than "
                "pipeline.max_input_skew of event time ahead of the slowest one with "
                "unread messages (input alignment, event clock).",
                ("topic",),
                stats.ahead_pauses,
            ),
            _counter(
                "cc_duplicate_events",
                "Events whose event_id was already seen.",
                ("channel",),
                stats.duplicates,
            ),
            _counter(
                "cc_unknown_interaction_events",
                "Events for an interaction whose contact.started was not seen.",
                ("channel",),
                stats.unknown_interaction,
            ),
            _counter(
                "cc_expired", "State entries dropped after their horizon.", ("kind",), stats.expired
            ),
        ]
        yield from families
        yield GaugeMetricFamily("cc_worker_up", "1 for every running worker process.", value=1)
        yield GaugeMetricFamily(
            "cc_board_partitions",
            "Partitions of the KPI board (one or more channels each) this worker holds "
            "and publishes snapshots for.",
            value=exp.board_partitions,
        )
        if exp.clock_ms is not None:
            yield GaugeMetricFamily(
                "cc_watermark_timestamp_seconds",
                "The pipeline clock: wall time, or the event-time watermark.",
                value=exp.clock_ms / 1000,
            )
        if exp.snapshot_ms is not None:
            yield GaugeMetricFamily(
                "cc_snapshot_timestamp_seconds",
                "When this worker last published its KPI snapshot.",
                value=exp.snapshot_ms / 1000,
            )
        if exp.redis_up is not None:
            yield GaugeMetricFamily(
                "cc_redis_up",
                "1 if Redis took the last snapshot write or, while no snapshot is due, "
                "answered the last check.",
                value=1 if exp.redis_up else 0,
            )
        yield CounterMetricFamily(
            "cc_redis_errors", "Failed Redis snapshot writes.", value=exp.redis_errors
        )
        if exp.internal_backlog is not None:
            yield GaugeMetricFamily(
                "cc_internal_backlog_messages",
                "Messages on the pipeline's internal topics not processed yet, by any "
                "worker (measured every second; another worker's partitions from their "
                "committed offsets, about a second behind).",
                value=exp.internal_backlog,
            )
        if exp.internal_backlog_items is not None:
            yield GaugeMetricFamily(
                "cc_internal_backlog_items",
                "Events, facts and deltas those messages carry (estimated from the mean "
                "size of the messages this worker sent); what pipeline.max_internal_backlog "
                "bounds.",
                value=exp.internal_backlog_items,
            )
        yield GaugeMetricFamily(
            "cc_input_held",
            "1 while this worker holds off reading input because the internal backlog "
            "(items) is above pipeline.max_internal_backlog (backpressure).",
            value=1 if exp.input_held else 0,
        )
        yield GaugeMetricFamily(
            "cc_input_skew_seconds",
            "Event time between this worker's furthest-ahead input partition and its "
            "slowest one with unread messages (event clock; 0 when caught up).",
            value=exp.input_skew_ms / 1000,
        )
        yield GaugeMetricFamily(
            "cc_input_ahead_partitions",
            "Input partitions this worker pauses for running more than "
            "pipeline.max_input_skew ahead of the slowest (input alignment).",
            value=exp.inputs_ahead,
        )
        if exp.heap is not None:
            yield GaugeMetricFamily(
                "cc_heap_allocated_bytes",
                "Bytes in live allocations of the worker's heap (jemalloc only): "
                "its state and what is in flight.",
                value=exp.heap.allocated,
            )
            yield GaugeMetricFamily(
                "cc_heap_resident_bytes",
                "Bytes of resident pages the worker's heap maps (jemalloc only): live "
                "allocations, the allocator's metadata, and free pages not handed back yet.",
                value=exp.heap.resident,
            )
        lag = GaugeMetricFamily(
            "cc_consumer_lag_messages",
            "Messages behind the end of an input partition.",
            labels=("topic", "partition"),
        )
        for (topic, partition), behind in sorted(exp.lag.items()):
            lag.add_metric([topic, str(partition)], behind)
        yield lag

    def _caps(self, caps: LabelCap, channels: set[str]) -> Iterator[Metric]:
        limit = GaugeMetricFamily(
            "cc_label_cap",
            "Names a channel keeps per label by first arrival, beyond the allow-list "
            "([labels] max_queues, max_networks); later ones fold into the other bucket.",
            labels=("label",),
        )
        limit.add_metric([QUEUE], caps.limits.max_queues)
        limit.add_metric([NETWORK], caps.limits.max_networks)
        kept = GaugeMetricFamily(
            "cc_label_values",
            "Distinct queue or network names of a channel with their own series.",
            labels=("channel", "label"),
        )
        folded = GaugeMetricFamily(
            "cc_label_folded_values",
            "Distinct queue or network names of a channel folded into the other bucket "
            "(estimate, about 2% error).",
            labels=("channel", "label"),
        )
        for report in caps.report(channels):
            kept.add_metric([report.channel, report.label], report.kept)
            folded.add_metric([report.channel, report.label], report.folded)
        yield limit
        yield kept
        yield folded


def _counter(name: str, doc: str, labels: tuple[str, ...], values: dict[Any, int]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for label_values, value in sorted(values.items()):
        family.add_metric(
            list(label_values) if isinstance(label_values, tuple) else [label_values], value
        )
    return family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else f"{bound:g}"


def registry(source: Callable[[], Exposition]) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(KpiCollector(source))
    return reg
