"""The current KPI records and SLA states, as the pipeline keeps them in Redis.

The reading is a full scan (at start and now and then, to notice keys that
expired); between scans, the records published on the updates channel keep
the snapshot current.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson

from streams.config import ConfigError, parse_duration_ms
from streams.core.board import key_of_record
from streams.publish.redis_sink import KPI_PREFIX, SLA_PREFIX, UPDATES_CHANNEL

SCAN_COUNT: Final = 1000


class Store(Protocol):
    """The two Redis calls a scan needs (redis.Redis has them; tests pass a dict)."""

    def scan_iter(self, match: str, count: int) -> Iterator[bytes]: ...

    def mget(self, keys: list[bytes]) -> list[bytes | None]: ...


@dataclass(slots=True)
class Snapshot:
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # record key -> cc.kpi.v1
    sla: dict[tuple[str, str], dict[str, Any]] = field(
        default_factory=dict
    )  # (kpi, key) -> cc.sla.v1

    def update(self, record: dict[str, Any]) -> None:
        self.records[key_of_record(record)] = record

    def in_breach(self, kpi: str, record_key: str) -> bool:
        state = self.sla.get((kpi, record_key))
        return state is not None and state.get("state") == "breach"

    def windows(self) -> list[str]:
        """The windows present, shortest first ('5m' < '1h' < '24h')."""
        return sorted({r["window"] for r in self.records.values()}, key=_span_ms)


def _span_ms(label: str) -> float:
    try:
        return parse_duration_ms("window", label)
    except ConfigError:
        return float("inf")


def _values(store: Store, pattern: str) -> Iterator[tuple[str, dict[str, Any]]]:
    keys = list(store.scan_iter(match=pattern, count=SCAN_COUNT))
    for start in range(0, len(keys), SCAN_COUNT):
        chunk = keys[start : start + SCAN_COUNT]
        for key, raw in zip(chunk, store.mget(chunk), strict=True):
            if raw is None:  # expired between the scan and the read
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict):
                yield key.decode(), value


def read(store: Store) -> Snapshot:
    """Every KPI record and SLA state in Redis now."""
    snapshot = Snapshot()
    for key, record in _values(store, KPI_PREFIX + "*"):
        if key != UPDATES_CHANNEL and record.get("schema") == "cc.kpi.v1":
            snapshot.records[key.removeprefix(KPI_PREFIX)] = record
    for key, event in _values(store, SLA_PREFIX + "*"):
        kpi, _, record_key = key.removeprefix(SLA_PREFIX).partition(":")
        snapshot.sla[(kpi, record_key)] = event
    return snapshot


def parse_update(payload: bytes) -> dict[str, Any] | None:
    """A record published on the updates channel, or None if it is not one."""
    try:
        record = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict) or record.get("schema") != "cc.kpi.v1":
        return None
    return record


def as_json(snapshot: Snapshot, windows: Iterable[str] | None, channel: str | None) -> bytes:
    """The snapshot for scripts: {"records": {key: record}, "sla": {"kpi:key": event}}."""
    wanted = None if windows is None else set(windows)

    def keep(record: dict[str, Any]) -> bool:
        in_window = wanted is None or record.get("window") in wanted
        return in_window and (channel is None or record.get("channel") == channel)

    records = {key: r for key, r in sorted(snapshot.records.items()) if keep(r)}
    sla = {
        f"{kpi}:{key}": event
        for (kpi, key), event in sorted(snapshot.sla.items())
        if key in records
    }
    return orjson.dumps({"records": records, "sla": sla}, option=orjson.OPT_INDENT_2)
