"""The Prometheus text format, byte for byte as prometheus_client's
`generate_latest` writes it, but escaping each distinct label set once.

`generate_latest` validates and escapes every label name and value of every
sample (about 10 µs a sample here). A record's ~50 series share one label set,
and a worker at the default label caps exposes tens of thousands of samples:
rendered that way, a scrape held the event loop every stage shares for tens of
milliseconds, a second at full caps.
"""

from __future__ import annotations

from prometheus_client.openmetrics.exposition import (
    UNDERSCORES,
    escape_label_name,
    escape_metric_name,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

OPENMETRICS_ONLY = ("_created", "_gsum", "_gcount")
"""Sample suffixes the text format shows as separate gauges, after their family."""

TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}


def generate_latest(registry: Collector) -> bytes:
    """What `prometheus_client.generate_latest(registry)` returns."""
    label_sets: dict[tuple[tuple[str, str], ...], str] = {}
    names: dict[str, str] = {}

    def line(sample: Sample) -> str:
        labels = ""
        if sample.labels:
            key = tuple(sample.labels.items())
            labels = label_sets.get(key, "")
            if not labels:
                pairs = ",".join(
                    f'{escape_label_name(name, UNDERSCORES)}="{_escape_value(value)}"'
                    for name, value in sorted(sample.labels.items())
                )
                labels = label_sets[key] = f"{{{pairs}}}"
        name = names.get(sample.name)
        if name is None:
            name = names[sample.name] = escape_metric_name(sample.name, UNDERSCORES)
        timestamp = ""
        if sample.timestamp is not None:
            timestamp = f" {int(float(sample.timestamp) * 1000):d}"
        return f"{name}{labels} {floatToGoString(sample.value)}{timestamp}\n"

    output: list[str] = []
    for metric in registry.collect():
        name = metric.name + ("_total" if metric.type == "counter" else "")
        name = name + ("_info" if metric.type == "info" else "")
        doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        family = escape_metric_name(name, UNDERSCORES)
        kind = TYPES.get(metric.type, metric.type)
        output.append(f"# HELP {family} {doc}\n# TYPE {family} {kind}\n")
        separate: dict[str, list[str]] = {}
        suffixes = {metric.name + suffix: suffix for suffix in OPENMETRICS_ONLY}
        for sample in metric.samples:
            suffix = suffixes.get(sample.name)
            if suffix is None:
                output.append(line(sample))
            else:
                separate.setdefault(suffix, []).append(line(sample))
        for suffix, lines in sorted(separate.items()):
            gauge = escape_metric_name(metric.name + suffix, UNDERSCORES)
            output.append(f"# HELP {gauge} {doc}\n# TYPE {gauge} gauge\n")
            output.extend(lines)
    return "".join(output).encode("utf-8")


def _escape_value(value: str) -> str:
    """Label values may hold any UTF-8; only these three are escaped."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
