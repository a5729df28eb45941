"""The shipped ServiceNow mapping on the real UCI incident log (../shared, never committed).

`independent_kpis` computes the KPIs of kpis.md straight from the CSV, with
nothing but the csv module and the interpretation the mapping file documents
(first response = first update out of state New, an end per transition to
Resolved, a transfer per reassignment, ...). The events the mapping produces
must give exactly the same figures when computed by the project's naive
event-level oracle (tests/naive.py), which shares no code with either.
"""

from __future__ import annotations

import calendar
import csv
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.config import Settings
from streams.contract.decode import Limits, decode_message
from streams.replay import cli
from streams.replay.importer import import_csv
from streams.replay.mapping import load
from streams.simulator.wire import encode
from tests import naive
from tests.pipeline.harness import LocalPipeline
from tests.simulator.command import run_command

DATA = Path(__file__).resolve().parents[3] / "shared/data/uci-incidents"
CSV_FILE = DATA / "incident_event_log_first5998.csv"
pytestmark = pytest.mark.skipif(
    not CSV_FILE.is_file(), reason=f"the UCI incident log is not at {CSV_FILE} (see SOURCE.md)"
)
DAY_MS = 86_400_000
PRIORITY_RANK = {"4 - Low": 0, "3 - Moderate": 1, "2 - High": 2, "1 - Critical": 3}


def minutes(text: str) -> int:
    """'29-02-2016 01:16' (UTC, as the mapping declares) -> epoch ms."""
    return calendar.timegm(time.strptime(text, "%d-%m-%Y %H:%M")) * 1000


def incidents() -> dict[str, list[dict[str, str]]]:
    by_number: dict[str, list[dict[str, str]]] = defaultdict(list)
    with CSV_FILE.open(newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            by_number[row["number"]].append(row)
    return by_number


def independent_kpis(queue: str | None = None) -> dict[str, Any]:
    """Counts and KPIs of all incidents (or of one assignment group), one window for all."""
    facts: list[dict[str, Any]] = []
    for rows in incidents().values():
        first = rows[0]
        start = minutes(first["opened_at"])
        group = first["assignment_group"] if first["assignment_group"] != "?" else "unassigned"
        taken = next((r for r in rows if r["incident_state"] != "New"), None)
        ends, reopens, transfers, escalations = [], [], [], []
        for before, row in zip([None, *rows], rows, strict=False):
            at = minutes(row["sys_updated_at"])
            if row["incident_state"] == "Resolved" and (
                before is None or before["incident_state"] != "Resolved"
            ):
                ends.append(at)
            if before is None:
                continue
            if int(row["reopen_count"]) > int(before["reopen_count"]):
                reopens.append(at)
            if int(row["reassignment_count"]) > int(before["reassignment_count"]):
                transfers.append(at)
            if PRIORITY_RANK[row["priority"]] > PRIORITY_RANK[before["priority"]]:
                escalations.append(at)
        # an end closes the incident once; a reopen lets the next end count again
        closing, is_open = [], True
        for at, kind in sorted([(t, 0) for t in ends] + [(t, 1) for t in reopens]):
            if kind == 1:
                is_open = True
            elif is_open:
                closing.append(at)
                is_open = False
        facts.append(
            {
                "queue": group,
                "caller": first["caller_id"],
                "category": first["category"],
                "start": start,
                "frt": None if taken is None else max(0, minutes(taken["sys_updated_at"]) - start),
                "ends": closing,
                "reopens": len(reopens),
                "transfers": transfers,
                "escalations": escalations,
            }
        )
    earlier = defaultdict(list)  # a contact without a reason repeats any contact of the caller
    for f in facts:
        earlier[f["caller"]].append((f["start"], f["category"]))
    chosen = [f for f in facts if queue is None or f["queue"] == queue]
    counts: Counter[str] = Counter()
    frts, resolution = [], []
    for f in chosen:
        counts["started"] += 1
        repeat = any(
            f["start"] - 7 * DAY_MS <= start < f["start"] and f["category"] in ("?", category)
            for start, category in earlier[f["caller"]]
        )
        counts["repeat_contacts"] += repeat
        if f["frt"] is not None:
            counts["answered"] += 1
            counts["answered_within_target"] += f["frt"] <= DAY_MS
            frts.append(f["frt"] / 1000)
        counts["reopened"] += f["reopens"]
        for end in f["ends"]:
            transferred = any(t <= end for t in f["transfers"])
            escalated = any(t <= end for t in f["escalations"])
            counts["ended"] += 1
            counts["resolved"] += 1
            counts["transferred"] += transferred
            counts["escalated"] += escalated
            counts["resolved_first_contact"] += not (repeat or transferred or escalated)
            resolution.append((end - f["start"]) / 1000)
    frts.sort()
    c = counts
    return {
        "counts": c,
        "kpis": {
            "volume": c["started"],
            "frt_mean_seconds": sum(frts) / len(frts),
            "frt_p50_seconds": frts[int(0.5 * (len(frts) - 1))],
            "frt_p90_seconds": frts[int(0.9 * (len(frts) - 1))],
            "service_level": c["answered_within_target"] / c["answered"],
            "answer_rate": 1.0,
            "transfer_rate": c["transferred"] / c["ended"],
            "escalation_rate": c["escalated"] / c["ended"],
            "fcr_rate": c["resolved_first_contact"] / c["resolved"],
            "repeat_contact_rate": c["repeat_contacts"] / c["started"],
            "contacts_per_resolution": c["started"] / c["resolved"],
            "resolution_time_mean_seconds": sum(resolution) / len(resolution),
            "reopen_rate": c["reopened"] / c["resolved"],
        },
    }


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    mapping = load("servicenow-incidents")
    with CSV_FILE.open(encoding=mapping.encoding, newline="") as stream:
        imported = import_csv(stream, mapping, Limits())
    assert imported.bad == []
    assert imported.rows == 5998
    return imported.events


def naive_view(events: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    messages = [("cc.emails", orjson.loads(encode(e).value)) for e in events]
    return naive.window(naive.facts_of(messages), 0, 2**62)


def assert_same(naive_figures: dict[str, Any], expected: dict[str, Any]) -> None:
    for name, value in expected["counts"].items():
        assert naive_figures["counts"][name] == value, name
    for name, value in expected["kpis"].items():
        assert naive_figures["kpis"][name] == pytest.approx(value, rel=1e-12), name


def test_the_mapping_gives_the_kpis_computed_from_the_csv(events):
    expected = independent_kpis()
    assert expected["counts"]["started"] == 890  # SOURCE.md: 890 incidents
    assert expected["counts"]["reopened"] == 11  # 10 incidents reopened, one of them twice
    assert_same(naive_view(events)[("email", "*", "-")], expected)


def test_per_queue_kpis_match_too(events):
    view = naive_view(events)
    busiest = Counter(e["queue"] for e in events if e["type"] == "contact.started").most_common(3)
    for queue, volume in busiest:
        expected = independent_kpis(queue)
        assert expected["counts"]["started"] == volume
        assert_same(view[("email", queue, "-")], expected)


def test_the_events_are_what_the_rows_say(events):
    kinds = Counter(e["type"] for e in events)
    assert kinds == {
        "contact.started": 890,
        "agent.responded": 890,  # every incident leaves state New at some point
        "contact.ended": 901,  # 890 first resolutions + 11 after a reopen
        "contact.transferred": 877,
        "contact.escalated": 25,
        "contact.reopened": 11,
    }
    assert len({e["event_id"] for e in events}) == len(events)
    first = next(e for e in events if e["interaction_id"] == "INC0000045")
    assert first == {
        "event_id": "INC0000045:2:1",
        "type": "contact.started",
        "ts": minutes("29-02-2016 01:16"),
        "interaction_id": "INC0000045",
        "customer_id": "Caller 2403",
        "channel": "email",
        "queue": "Group 56",
        "reason": "Category 55",
        "priority": "normal",
    }
    first_rows = Counter(rows[0]["priority"] for rows in incidents().values())
    labels = {
        "1 - Critical": "urgent",
        "2 - High": "high",
        "3 - Moderate": "normal",
        "4 - Low": "low",
    }
    assert Counter(e["priority"] for e in events if e["type"] == "contact.started") == {
        labels[priority]: n for priority, n in first_rows.items()
    }
    assert sum(e["queue"] == "unassigned" for e in events if e["type"] == "contact.started") == 9
    for e in events:
        message = encode(e)
        assert decode_message(message.value, "email", Limits()).rejections == []


def test_reopened_incident_has_its_whole_story(events):
    story = [(e["type"], e["ts"]) for e in events if e["interaction_id"] == "INC0000102"]
    assert story == [
        ("contact.started", minutes("29-02-2016 09:06")),
        ("agent.responded", minutes("29-02-2016 20:09")),  # to Awaiting User Info
        ("contact.transferred", minutes("04-03-2016 11:15")),
        ("contact.transferred", minutes("04-03-2016 12:17")),
        ("contact.transferred", minutes("04-03-2016 14:08")),
        ("contact.transferred", minutes("04-03-2016 15:51")),
        ("contact.ended", minutes("14-03-2016 08:13")),
        ("contact.reopened", minutes("17-03-2016 16:27")),
        ("contact.ended", minutes("17-03-2016 16:28")),
    ]


def test_replay_sends_the_export_in_event_time_order(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CC_CONFIG", raising=False)
    out = tmp_path / "incidents.jsonl"
    assert (
        run_command(
            cli, "replay", str(CSV_FILE), "--mapping", "servicenow-incidents", "--out", str(out)
        )
        == 0
    )
    lines = out.read_bytes().splitlines()
    times = [minutes_from_rfc3339(orjson.loads(line)["ts"]) for line in lines]
    assert len(lines) == 3594
    assert times == sorted(times)
    err = capsys.readouterr().err
    assert "3,594 events from 5,998 rows (0 bad, " in err


def minutes_from_rfc3339(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S.000Z")) * 1000


def test_the_pipeline_stages_give_the_same_kpis_as_the_csv(events):
    """The mapped export through every stage of the pipeline (in memory, event clock,
    one window long enough for the whole year of the log)."""
    hours = 9600
    settings = replace(
        Settings(),
        clock="event",
        windows_ms=(hours * 3_600_000,),
        alert_window_ms=hours * 3_600_000,
        open_ttl_ms=400 * 86_400_000,
        closed_retention_ms=30 * 86_400_000,
    )
    pipe = LocalPipeline(settings)
    ordered = sorted(events, key=lambda e: naive.ms(e["ts"]))
    wall = 2_000_000_000_000
    for start in range(0, len(ordered), 200):
        chunk = ordered[start : start + 200]
        pipe.send([("cc.emails", encode(e).value) for e in chunk], wall)
    assert pipe.stats.late.total() == 0 and not pipe.deadletters
    record = pipe.records(wall + settings.idle_timeout_ms + 1)[f"email|*|-|{hours}h"]
    expected = independent_kpis()
    for name, value in expected["counts"].items():
        assert record["counts"][name] == value, name
    for name, value in expected["kpis"].items():
        tolerance = 0.01 if name.startswith("frt_p") else 1e-9
        assert record["kpis"][name] == pytest.approx(value, rel=tolerance), name
