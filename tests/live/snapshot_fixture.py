"""A known snapshot, as the pipeline would keep it in Redis, for the live view's tests."""

from __future__ import annotations

import fnmatch
from typing import Any

import orjson

from streams.core.record import KPI_FIELDS

TARGETS = {
    "call": {"service_level": 0.8, "frt_seconds": 30, "answer_rate": 0.9, "abandonment_rate": 0.1},
    "chat": {"service_level": 0.8, "frt_seconds": 60, "abandonment_rate": 0.1},
    "email": {"service_level": 0.9, "frt_seconds": 86400},
    "social": {"service_level": 0.9, "frt_seconds": 7200},
}
COMMON_TARGETS = {"fcr_rate": 0.75, "escalation_rate": 0.15, "csat": 0.8}


def record(channel: str, queue: str, network: str | None, window: str, **kpis: Any) -> dict:
    targets = {**TARGETS[channel], **COMMON_TARGETS}
    if network == "twitter":
        targets["frt_seconds"] = 3600
    return {
        "schema": "cc.kpi.v1",
        "channel": channel,
        "queue": queue,
        "network": network,
        "window": window,
        "window_start": "2026-11-23T09:00:05Z",
        "window_end": "2026-11-23T10:00:05Z",
        "kpis": {name: kpis.get(name) for name in KPI_FIELDS},
        "counts": {"started": kpis.get("volume", 0)},
        "targets": targets,
    }


CALL = {"answer_rate": 0.93, "fcr_rate": 0.78, "escalation_rate": 0.06, "csat": 0.86, "nps": 31.0}
RECORDS = [
    record(
        "call",
        "*",
        None,
        "1h",
        volume=1250,
        queue_now=9,
        oldest_waiting_seconds=41.0,
        service_level=0.78,
        abandonment_rate=0.07,
        frt_p90_seconds=48.2,
        aht_seconds=312.0,
        **CALL,
    ),
    record(
        "call",
        "billing",
        None,
        "1h",
        volume=412,
        queue_now=7,
        oldest_waiting_seconds=41.0,
        service_level=0.71,
        abandonment_rate=0.12,
        frt_p90_seconds=95.0,
        aht_seconds=305.0,
        **{**CALL, "answer_rate": 0.88},
    ),
    record(
        "call",
        "support",
        None,
        "1h",
        volume=838,
        queue_now=2,
        oldest_waiting_seconds=12.4,
        service_level=0.84,
        abandonment_rate=0.04,
        frt_p90_seconds=22.0,
        aht_seconds=315.5,
        **CALL,
    ),
    record(
        "chat",
        "support",
        None,
        "1h",
        volume=95,
        queue_now=0,
        service_level=0.91,
        answer_rate=0.98,
        abandonment_rate=0.02,
        frt_p90_seconds=38.0,
        fcr_rate=0.81,
        escalation_rate=0.04,
        csat=0.74,
        nps=12.0,
        aht_seconds=640.0,
    ),
    record(
        "email",
        "support",
        None,
        "1h",
        volume=31,
        queue_now=118,
        oldest_waiting_seconds=50_400.0,
        service_level=1.0,
        answer_rate=1.0,
        frt_p90_seconds=30_100.0,
    ),
    record(
        "social",
        "*",
        "*",
        "1h",
        volume=260,
        queue_now=180,
        oldest_waiting_seconds=9000.0,
        service_level=0.55,
        answer_rate=1.0,
        frt_p90_seconds=13_875.0,
        fcr_rate=0.7,
    ),
    record(
        "social",
        "care",
        "twitter",
        "1h",
        volume=200,
        queue_now=150,
        oldest_waiting_seconds=9000.0,
        service_level=0.43,
        answer_rate=1.0,
        frt_p90_seconds=15_204.0,
    ),
    record(
        "social",
        "care",
        "facebook",
        "1h",
        volume=40,
        queue_now=20,
        oldest_waiting_seconds=2000.0,
        service_level=0.94,
        answer_rate=1.0,
        frt_p90_seconds=2243.0,
    ),
    record("call", "billing", None, "5m", volume=40, service_level=0.5),
]
SLA = {
    # the pipeline's verdict: facebook's 1 h service level is in breach (say it fell
    # below target earlier in the hour and has not yet recovered)
    "cc:sla:service_level:social|care|facebook|1h": {
        "schema": "cc.sla.v1",
        "state": "breach",
        "kpi": "service_level",
        "channel": "social",
        "queue": "care",
        "network": "facebook",
        "window": "1h",
        "value": 0.85,
        "target": 0.9,
        "contacts": 35,
        "at": "2026-11-23T09:58:00Z",
    },
    "cc:sla:service_level:call|support|-|1h": {
        "schema": "cc.sla.v1",
        "state": "recovered",
        "kpi": "service_level",
        "channel": "call",
        "queue": "support",
        "network": None,
        "window": "1h",
        "value": 0.84,
        "target": 0.8,
        "contacts": 800,
        "at": "2026-11-23T09:40:00Z",
    },
}


def redis_contents() -> dict[bytes, bytes]:
    """Key -> value as the pipeline writes them."""
    contents = {}
    for r in RECORDS:
        key = f"cc:kpi:{r['channel']}|{r['queue']}|{r['network'] or '-'}|{r['window']}"
        contents[key.encode()] = orjson.dumps(r)
    for key, event in SLA.items():
        contents[key.encode()] = orjson.dumps(event)
    return contents


class FakeRedis:
    """The two calls a snapshot read makes, over a dict."""

    def __init__(self, contents: dict[bytes, bytes | None]) -> None:
        self.contents = contents

    def scan_iter(self, match: str, count: int) -> list[bytes]:
        return [k for k in self.contents if fnmatch.fnmatchcase(k.decode(), match)]

    def mget(self, keys: list[bytes]) -> list[bytes | None]:
        return [self.contents.get(k) for k in keys]

    def close(self) -> None:
        pass
