"""Replaying JSONL: lines checked by the contract's decoder, sent verbatim in event-time order."""

import orjson
import pytest

from streams.contract.decode import Limits
from streams.replay import cli
from streams.replay.jsonl import read_jsonl
from streams.replay.order import in_event_time_order
from streams.simulator.wire import Message
from tests.simulator.command import run_command


def line(event_id, ts, kind="contact.started", **extra):
    event = {"event_id": event_id, "type": kind, "ts": ts, "interaction_id": "i1", **extra}
    if kind == "contact.started":
        event |= {"customer_id": "c1", "queue": "q"}
    return orjson.dumps(event)


LINES = [
    line("e3", "2026-11-23T10:00:05Z", channel="call"),
    b"",
    line("e1", 1_795_428_000_000, channel="call"),  # 10:00:00Z as epoch ms
    b"{not json",
    line("e2", "2026-11-23T11:00:01+01:00", channel="chat"),  # 10:00:01Z
    line("e4", "2026-11-23T10:00:00Z", "survey.answered", csat=9),
    b"[1, 2]",
    line("e5", "2026-11-23T10:00:05Z"),  # no channel
    line("e6", "2026-11-23T10:00:00Z", "survey.answered", csat=5, channel="email"),
]


def test_valid_lines_are_kept_verbatim_and_bad_ones_reported():
    loaded = read_jsonl(LINES, Limits(), default_channel=None)
    assert [m.value for m in loaded.messages] == [LINES[0], LINES[2], LINES[4], LINES[8]]
    assert [m.channel for m in loaded.messages] == ["call", "call", "chat", None]
    assert [m.key for m in loaded.messages] == [b"c1", b"c1", b"c1", None]
    assert [(bad.line, bad.reason.split(":")[0]) for bad in loaded.bad] == [
        (4, "invalid_json"),
        (6, "out_of_range"),
        (7, "not_an_object"),
        (8, "no channel"),
    ]
    assert loaded.bad[1].reason.startswith("out_of_range: csat ")  # the decoder's own detail


def test_a_default_channel_fills_in_for_events_without_one():
    loaded = read_jsonl([LINES[7]], Limits(), default_channel="social")
    assert [b.reason for b in loaded.bad] == ["missing_field: network is required"]
    loaded = read_jsonl([LINES[7]], Limits(), default_channel="email")
    assert [m.channel for m in loaded.messages] == ["email"] and loaded.bad == []


def test_event_time_order_is_stable_and_counts_what_moved():
    messages = [
        Message(at, "call", None, str(n).encode()) for n, at in enumerate([5, 1, 3, 3, 9, 2])
    ]
    ordered = in_event_time_order(messages)
    assert [m.value for m in ordered.messages] == [b"1", b"5", b"2", b"3", b"0", b"4"]
    assert ordered.reordered == 4  # 1, 3 and 3 came after 5, and 2 after 9


@pytest.fixture(autouse=True)
def no_config(monkeypatch):
    monkeypatch.delenv("CC_CONFIG", raising=False)


def test_replay_command_sorts_reports_and_goes_on(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(LINES) + b"\n")
    out = tmp_path / "out.jsonl"
    bad_rows = tmp_path / "bad.tsv"
    code = run_command(cli, "replay", str(source), "--out", str(out), "--bad-rows", str(bad_rows))
    assert code == 0
    assert out.read_bytes().splitlines() == [LINES[2], LINES[8], LINES[4], LINES[0]]
    err = capsys.readouterr().err.splitlines()
    assert [e.split(": ")[:2] for e in err[:4]] == [
        [f"{source}:4", "invalid_json"],
        [f"{source}:6", "out_of_range"],
        [f"{source}:7", "not_an_object"],
        [f"{source}:8", "no channel"],
    ]
    assert err[4].startswith("replay: 4 events from 8 rows (4 bad, 3 put back in event-time order)")
    reported = [row.split("\t") for row in bad_rows.read_text().splitlines()]
    assert [(n, reason.split(":")[0]) for n, reason in reported] == [
        ("4", "invalid_json"),
        ("6", "out_of_range"),
        ("7", "not_an_object"),
        ("8", "no channel"),
    ]


def test_replay_problems_with_the_input_itself(tmp_path, capsys):
    assert run_command(cli, "replay", str(tmp_path / "missing.jsonl"), "--out", "-") == 1
    assert "cc-kpi replay: cannot read" in capsys.readouterr().err
    csv_file = tmp_path / "x.csv"
    csv_file.write_text("a,b\n1,2\n")
    assert run_command(cli, "replay", str(csv_file), "--mapping", "servicenow-incidents") == 2
    assert capsys.readouterr().err == (
        "cc-kpi replay: source.group_by: column 'number' is not in the file's header\n"
    )
    assert run_command(cli, "replay", str(csv_file), "--mapping", "nope") == 2
    assert "no mapping 'nope' (shipped: servicenow-incidents)" in capsys.readouterr().err
