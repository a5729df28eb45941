"""KPI records: every formula, and null on a zero denominator."""

import pytest

from streams.config import Settings
from streams.core.aggregate import (
    CES,
    COUNT_INDEX,
    FRT,
    HANDLE,
    NEXT_RESPONSE,
    RESOLUTION,
    Aggregate,
)
from streams.core.record import Live, build, iso, kpis, record_key

T = Settings().sla.targets("call", "billing", "-")


def agg_with(**counts):
    agg = Aggregate()
    for name, n in counts.items():
        agg.apply(COUNT_INDEX[name], n)
    return agg


def test_empty_aggregate_gives_null_ratios_and_zero_counts():
    k = kpis(Aggregate(), "call", Live(), 0)
    assert k["volume"] == 0 and k["queue_now"] == 0 and k["at_risk"] == 0
    for name in (
        "answer_rate",
        "service_level",
        "abandonment_rate",
        "escalation_rate",
        "transfer_rate",
        "fcr_rate",
        "repeat_contact_rate",
        "contacts_per_resolution",
        "aht_seconds",
        "resolution_time_mean_seconds",
        "reopen_rate",
        "csat",
        "nps",
        "ces",
        "frt_mean_seconds",
        "frt_p50_seconds",
        "frt_p90_seconds",
        "frt_p99_seconds",
        "asa_seconds",
        "next_response_mean_seconds",
        "next_response_p90_seconds",
        "oldest_waiting_seconds",
    ):
        assert k[name] is None, name


def test_ratios():
    agg = agg_with(
        started=10,
        answered=8,
        answered_within_target=6,
        abandoned=2,
        short_abandoned=3,
        ended=8,
        escalated=2,
        transferred=1,
        resolved=5,
        resolved_first_contact=4,
        repeat_contacts=3,
        reopened=1,
        csat_answers=4,
        csat_satisfied=3,
        nps_answers=5,
        nps_promoters=3,
        nps_detractors=1,
        ces_answers=2,
    )
    agg.apply(CES, 5)
    agg.apply(CES, 6)
    k = kpis(agg, "chat", Live(), 0)
    assert k["answer_rate"] == 0.8 and k["abandonment_rate"] == 0.2
    assert k["answer_rate"] + k["abandonment_rate"] == 1
    assert k["service_level"] == 0.6
    assert k["escalation_rate"] == 0.25 and k["transfer_rate"] == 0.125
    assert k["fcr_rate"] == 0.8 and k["repeat_contact_rate"] == 0.3
    assert k["contacts_per_resolution"] == 2.0 and k["reopen_rate"] == 0.2
    assert k["csat"] == 0.75 and k["nps"] == 40.0 and k["ces"] == 5.5
    assert k["asa_seconds"] is None  # ASA is the call name of FRT


def test_times_and_quantiles():
    agg = Aggregate()
    for ms in (1_000, 2_000, 3_000, 10_000):
        agg.apply(COUNT_INDEX["answered"], 1)
        agg.apply(FRT, ms)
    agg.apply(NEXT_RESPONSE, 4_000)
    agg.apply(HANDLE, 300_500_000)
    agg.apply(RESOLUTION, 60_000)
    k = kpis(agg, "call", Live(3, 1_000, 1), 31_000)
    assert k["frt_mean_seconds"] == 4.0 and k["asa_seconds"] == 4.0
    assert k["frt_p50_seconds"] == pytest.approx(2.0, rel=0.005)
    assert k["frt_p99_seconds"] == pytest.approx(3.0, rel=0.005)
    assert k["next_response_mean_seconds"] == 4.0
    assert k["aht_seconds"] == 300.5 and k["resolution_time_mean_seconds"] == 60.0
    assert (k["queue_now"], k["oldest_waiting_seconds"], k["at_risk"]) == (3, 30.0, 1)


def test_record_shape_follows_the_output_contract():
    record = build(
        channel="call",
        queue="billing",
        network="-",
        window="1h",
        bounds_ms=(0, 3_600_000),
        agg=agg_with(started=1),
        live=Live(),
        clock_ms=3_599_000,
        targets=T,
    )
    assert record["schema"] == "cc.kpi.v1" and record["network"] is None
    assert record["window_start"] == "1970-01-01T00:00:00Z"
    assert record["window_end"] == "1970-01-01T01:00:00Z"
    assert record["targets"] == {
        "service_level": 0.8,
        "frt_seconds": 30,
        "answer_rate": 0.9,
        "abandonment_rate": 0.1,
        "fcr_rate": 0.75,
        "escalation_rate": 0.15,
        "csat": 0.8,
    }
    assert set(record["counts"]) >= {"started", "answered", "answered_within_target", "ces_answers"}
    assert record_key("call", "billing", "-", "1h") == "call|billing|-|1h"


def test_iso_keeps_milliseconds_only_when_present():
    assert iso(1_700_000_000_000) == "2023-11-14T22:13:20Z"
    assert iso(1_700_000_000_042) == "2023-11-14T22:13:20.042Z"
