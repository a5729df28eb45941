"""`cc-kpi simulate` end to end on the JSONL path: valid events, determinism, errors."""

import orjson
import pytest

from streams.contract.decode import Limits, decode_message
from streams.simulator import cli
from tests.simulator.command import run_command


@pytest.fixture(autouse=True)
def no_config(monkeypatch):
    monkeypatch.delenv("CC_CONFIG", raising=False)


def channel_of(line):
    """The topic channel a line would go to (any, if the line is not an event)."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "call"
    if not isinstance(event, dict) or event.get("type") == "survey.answered":
        return None
    return event.get("channel", "call")


def test_simulate_writes_valid_events_to_jsonl(tmp_path, capsys):
    out = tmp_path / "events.jsonl"
    code = run_command(cli, "simulate", "social-storm", "--duration", "2h", "--out", str(out))
    assert code == 0
    lines = out.read_bytes().splitlines()
    assert len(lines) > 300
    for line in lines:
        event = orjson.loads(line)
        channel = None if event["type"] == "survey.answered" else event["channel"]
        assert decode_message(line, channel, Limits()).rejections == []
        assert event["ts"].endswith("Z") and len(event["ts"]) == 24
    summary = capsys.readouterr().err
    assert f"social-storm (seed 1): {len(lines):,} events in {len(lines):,} messages" in summary
    assert "events/s" in summary


def test_same_seed_same_bytes_and_start_moves_the_run(tmp_path):
    paths = [tmp_path / f"{n}.jsonl" for n in range(3)]
    args = ("simulate", "normal-day", "--duration", "3h", "--seed", "4")
    run_command(cli, *args, "--out", str(paths[0]))
    run_command(cli, *args, "--out", str(paths[1]))
    run_command(cli, *args, "--out", str(paths[2]), "--start", "2026-12-01T06:00:00Z")
    assert paths[0].read_bytes() == paths[1].read_bytes()
    first = orjson.loads(paths[2].read_bytes().splitlines()[0])
    assert first["ts"].startswith("2026-12-01T06:0")


def test_faults_go_into_the_file(tmp_path):
    out = tmp_path / "faulty.jsonl"
    code = run_command(
        cli,
        *("simulate", "normal-day", "--duration", "12h", "--out", str(out)),
        *("--duplicates", "0.01", "--malformed", "0.01", "--disorder", "0.05"),
    )
    assert code == 0
    lines = out.read_bytes().splitlines()
    ids = []
    rejected = 0
    for line in lines:
        decoded = decode_message(line, channel_of(line), Limits())
        rejected += bool(decoded.rejections)
        ids.extend(e.event_id for e in decoded.events)
    assert len(ids) > len(set(ids))  # duplicates
    assert 0.005 < rejected / len(lines) < 0.015


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("no-such",), "scenario: no scenario 'no-such'"),
        (("normal-day", "--duration", "soon"), "--duration: expected a duration"),
        (("normal-day", "--start", "tomorrow"), "--start: expected a date-time"),
        (
            ("normal-day", "--out", "x.jsonl", "--batch", "10"),
            "--batch applies to Kafka output only",
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_command(cli, "simulate", *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cc-kpi simulate: ") and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.jsonl").exists()


def test_a_bad_scenario_file_names_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'base = "normal-day"\n[[queues]]\nchannel = "call"\nname = "billing"\nrate = "lots"\n'
    )
    assert run_command(cli, "simulate", str(bad), "--out", "-") == 2
    assert capsys.readouterr().err == (
        "cc-kpi simulate: queues.call/billing.rate: expected a number, got 'lots'\n"
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--speed", "warp", "expected 'max', 'realtime' or a factor"),
        ("--batch", "0", "expected a whole number of at least 1"),
        ("--duplicates", "1.5", "expected a share between 0 and 1"),
    ],
)
def test_bad_option_values_are_usage_errors(option, value, message, capsys):
    with pytest.raises(SystemExit) as exited:
        run_command(cli, "simulate", "normal-day", option, value)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
