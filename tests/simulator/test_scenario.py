"""Scenario files: the shipped ones load, inheritance works, every bad value is named."""

from pathlib import Path

import pytest

from streams.simulator import scenario
from streams.simulator.scenario import ScenarioError, Staffing, load, parse

MINIMAL = """
[[queues]]
channel = "call"
name = "sales"
rate = 10
agents = 2
handle = "3m"
"""


def parsed(top=None, **queue):
    """A one-queue scenario with these top-level entries and queue keys."""
    base = {"channel": "call", "name": "sales", "rate": 10, "agents": 2, "handle": "3m"}
    return parse({"queues": [{**base, **queue}], **(top or {})})


def test_the_four_scenarios_ship_and_load():
    assert scenario.available() == [
        "incident-spike",
        "normal-day",
        "social-storm",
        "understaffing",
    ]
    for name in scenario.available():
        loaded = load(name)
        assert loaded.name == name
        assert loaded.description
        assert {q.key for q in loaded.queues} >= {"call/billing", "call/support", "chat/support"}


def test_a_scenario_changes_its_base_only_where_it_says():
    normal, spike, short = load("normal-day"), load("incident-spike"), load("understaffing")
    assert spike.queues == normal.queues
    assert [(s.queue, s.at_ms, s.duration_ms, s.factor) for s in spike.surges] == [
        ("call/support", 10 * 3_600_000, 3_600_000, 3.0)
    ]
    changed = {q.key for q, n in zip(short.queues, normal.queues, strict=True) if q != n}
    assert changed == {"call/billing", "call/support", "chat/support"}
    for q, n in zip(short.queues, normal.queues, strict=True):
        if q.key in changed:
            fewer = [a <= b for a, b in zip(q.staffing.hourly, n.staffing.hourly, strict=True)]
            assert all(fewer) and sum(q.staffing.hourly) < 0.8 * sum(n.staffing.hourly)
            assert q.rate == n.rate and q.handle_ms == n.handle_ms


def test_profiles_are_scaled_to_mean_one():
    profile = parsed(profile=[1] * 12 + [3] * 12).queues[0].profile
    assert sum(profile) == pytest.approx(24)
    assert profile[0] == pytest.approx(0.5) and profile[23] == pytest.approx(1.5)


def test_staffing_follows_the_hour_and_the_weekdays():
    staffing = Staffing(tuple(range(24)), frozenset({0, 1, 2, 3, 4}))
    monday_0930 = 1_795_392_000_000 + 9 * 3_600_000 + 30 * 60_000  # 2026-11-23 is a Monday
    assert staffing.agents_at(monday_0930) == 9
    assert staffing.agents_at(monday_0930 - 2 * 86_400_000) == 0  # Saturday
    assert Staffing.next_change(monday_0930) == monday_0930 + 30 * 60_000


SURGE = {"queue": "call/sales", "at": "1h", "duration": "1h", "factor": 2}


@pytest.mark.parametrize(
    ("top", "queue", "key", "problem"),
    [
        ({"colour": 1}, {}, "colour", "unknown key"),
        ({}, {"colour": 1}, "queues[1].colour", "unknown key"),
        ({}, {"rate": -1}, "queues.call/sales.rate", "must be at least 0"),
        ({}, {"patience": "soon"}, "queues.call/sales.patience", "expected a duration"),
        ({}, {"agents": [1, 2]}, "queues.call/sales.agents", "24 hourly numbers"),
        ({}, {"agents": 2.5}, "queues.call/sales.agents", "whole number"),
        ({}, {"days": ["monday"]}, "queues.call/sales.days", "unknown day"),
        ({}, {"transfer": 0.1}, "queues.call/sales.transfer_to", "is required"),
        (
            {},
            {"transfer": 0.1, "transfer_to": "nowhere"},
            "queues.call/sales.transfer_to",
            "must name another call queue",
        ),
        ({}, {"profile": "weekend"}, "queues.call/sales.profile", "unknown profile"),
        ({}, {"reply": 0.3}, "queues.call/sales.reply", "only applies to email and social"),
        ({}, {"networks": {"x": 1}}, "queues.call/sales.networks", "only applies to social"),
        ({}, {"resolve": 1.5}, "queues.call/sales.resolve", "between 0 and 1"),
        ({}, {"channel": "fax"}, "queues[1].channel", "expected one of call"),
        ({"duration": "0s"}, {}, "duration", "longer than zero"),
        ({"start": "yesterday"}, {}, "start", "date-time with offset"),
        ({"repeat": {"delay": "3 days"}}, {}, "repeat.delay", "expected a duration"),
        ({"surveys": {"base": 7}}, {}, "surveys.base", "between 1 and 5"),
        ({"channels": {"email": {"patience": "1m"}}}, {}, "channels.email.patience", "call and"),
        ({"surges": [{**SURGE, "queue": "call/x"}]}, {}, "surges[1].queue", "no queue"),
        ({"surges": [{**SURGE, "at": "2d"}]}, {}, "surges[1].at", "after the end"),
        ({"surges": [{**SURGE, "network": "x"}]}, {}, "surges[1].network", "not a network"),
    ],
)
def test_a_bad_value_names_its_key(top, queue, key, problem):
    with pytest.raises(ScenarioError) as caught:
        parsed(top, **queue)
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_durations_accept_units_and_bare_seconds():
    loaded = parsed({"repeat": {"delay": 3, "retry_delay": "1.5h"}}, wrap="0s")
    assert loaded.repeat.delay_ms == 3000
    assert loaded.repeat.retry_delay_ms == 5_400_000
    assert loaded.queues[0].wrap_ms == 0


def test_social_queues_need_networks():
    with pytest.raises(ScenarioError, match=r"queues.social/sales.networks: is required"):
        parsed(channel="social")


def test_unknown_scenario_lists_the_shipped_ones():
    with pytest.raises(ScenarioError, match="shipped: incident-spike, normal-day"):
        load("no-such-scenario")


def test_base_scenarios_resolve_relative_files_and_refuse_cycles(tmp_path: Path):
    (tmp_path / "a.toml").write_text('base = "b.toml"\n' + MINIMAL)
    (tmp_path / "b.toml").write_text('base = "a.toml"\n')
    with pytest.raises(ScenarioError, match="cycle"):
        load(str(tmp_path / "a.toml"))
    (tmp_path / "c.toml").write_text(
        'base = "normal-day"\n[[queues]]\nchannel = "call"\nname = "billing"\nrate = 1\n'
    )
    derived = load(str(tmp_path / "c.toml"))
    assert derived.name == "c" and derived.description == ""
    rates = {q.key: q.rate for q in derived.queues}
    assert rates["call/billing"] == 1 and rates["call/support"] == 90
