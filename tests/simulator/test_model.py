"""The contact-center model: its statistics against the scenario's parameters.

Tolerances are a few standard deviations of the sampling error for the run
lengths used, so the tests fail when the model is wrong, not by bad luck
(and the seeds are fixed, so they never flake).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from dataclasses import replace

import orjson
import pytest

from streams.contract.decode import Limits, decode_message
from streams.contract.event import EVENT_TYPES
from streams.simulator.model import Simulation
from streams.simulator.scenario import HOUR_MS, Staffing, load, parse
from streams.simulator.wire import encode
from tests.simulator.measure import contacts, hourly, service

START = 1_795_392_000_000  # 2026-11-23T00:00:00Z, a Monday


def one_queue(queue=None, top=None):
    """A scenario with one call queue: generous staffing unless told otherwise."""
    spec = {
        "channel": "call",
        "name": "line",
        "rate": 120,
        "agents": 30,
        "handle": "4m",
        "patience": "2m",
        **(queue or {}),
    }
    return parse({"queues": [spec], **(top or {})})


def run(scenario, seed=1, duration_ms=None):
    return list(Simulation(scenario, seed, duration_ms=duration_ms).events())


def fresh(events):
    """Contacts of customers seen for the first time: the Poisson arrivals."""
    seen = set()
    out = []
    for e in events:
        if e["type"] == "contact.started" and e["customer_id"] not in seen:
            seen.add(e["customer_id"])
            out.append(e)
    return out


def test_arrivals_are_poisson_at_the_scenario_rate():
    events = run(one_queue(top={"duration": "2d"}))
    arrivals = fresh(events)
    expected = 120 * 48
    assert abs(len(arrivals) - expected) < 4 * math.sqrt(expected)
    gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(arrivals)]
    mean = sum(gaps) / len(gaps)
    assert mean == pytest.approx(30_000, rel=0.05)  # 120 per hour
    # exponential gaps: as many shorter than the mean as the law says (1 - 1/e)
    assert sum(g < mean for g in gaps) / len(gaps) == pytest.approx(1 - math.exp(-1), abs=0.02)


def test_arrivals_follow_the_intraday_profile():
    profile = [0.25] * 8 + [3.0] * 8 + [0.5] * 8  # mean 1.25: scaled to 0.2, 2.4, 0.4
    events = run(one_queue({"profile": profile}, {"duration": "3d"}))
    per_band = Counter(
        min((e["ts"] - START) % 86_400_000 // (8 * HOUR_MS), 2) for e in fresh(events)
    )
    for band, weight in enumerate((0.2, 2.4, 0.4)):
        expected = 120 * weight * 8 * 3
        assert abs(per_band[band] - expected) < 4 * math.sqrt(expected), band


def test_a_surge_multiplies_arrivals_only_while_it_lasts():
    surge = {"queue": "call/line", "at": "4h", "duration": "2h", "factor": 3}
    events = run(one_queue(top={"duration": "8h", "surges": [surge]}))
    per_hour = Counter((e["ts"] - START) // HOUR_MS for e in fresh(events))
    during = per_hour[4] + per_hour[5]
    outside = sum(per_hour[h] for h in (0, 1, 2, 3, 6, 7))
    assert abs(during - 720) < 4 * math.sqrt(720)
    assert abs(outside - 720) < 4 * math.sqrt(720)


def test_abandonment_rises_and_service_level_falls_as_agents_go():
    results = []
    for agents in (12, 10, 9, 8):  # load: 120/h x 4 min = 8 Erlang
        cs = contacts(run(one_queue({"agents": agents}, {"duration": "12h"})))
        results.append(service(cs.values()))
    abandonment = [r.abandonment for r in results]
    levels = [r.service_level for r in results]
    assert abandonment == sorted(abandonment) and len(set(abandonment)) == 4
    assert levels == sorted(levels, reverse=True) and len(set(levels)) == 4
    assert abandonment[0] < 0.05 < 0.1 < abandonment[-1]
    assert levels[0] > 0.8 > levels[-1]


def test_abandonment_comes_from_patience_not_a_coin_flip():
    """Nobody abandons when agents are always free; everyone waits when none are."""
    idle = contacts(run(one_queue({"agents": 60}, {"duration": "6h"})))
    assert all(c.abandoned is None for c in idle.values())
    closed = contacts(run(one_queue({"agents": 0, "patience": "1m"}, {"duration": "6h"})))
    waits = [c.abandoned - c.start for c in closed.values() if c.abandoned is not None]
    assert len(waits) == len(closed) - sum(c.abandoned is None for c in closed.values())
    assert sum(waits) / len(waits) == pytest.approx(60_000, rel=0.08)  # the mean patience


def test_no_agent_takes_two_calls_at_once_nor_more_agents_than_scheduled():
    hourly_agents = [2] * 6 + [12] * 12 + [4] * 6
    events = run(one_queue({"agents": hourly_agents, "wrap": "0s"}, {"duration": "1d"}))
    busy: dict[str, list[tuple[int, int]]] = defaultdict(list)
    talking: dict[str, tuple[str, int]] = {}
    on_duty: dict[int, set[str]] = defaultdict(set)
    for e in events:
        iid = e["interaction_id"]
        if e["type"] == "agent.responded":
            talking[iid] = (e["agent_id"], e["ts"])
            on_duty[(e["ts"] - START) // HOUR_MS].add(e["agent_id"])
        elif e["type"] in ("contact.ended", "contact.transferred") and iid in talking:
            agent, since = talking.pop(iid)
            busy[agent].append((since, e["ts"]))
    for spans in busy.values():
        spans.sort()
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    for hour, agents in on_duty.items():
        assert len(agents) <= hourly_agents[hour % 24]  # agents leaving only finish their call
    assert max(len(a) for a in on_duty.values()) == 12


REPEATS = {
    "repeat": {
        "after_unresolved": 0.6,
        "after_resolved": 0.1,
        "after_abandoned": 0.5,
        "delay": "2h",
        "retry_delay": "10m",
    }
}


def test_repeat_contacts_follow_the_outcome_at_the_scenario_rates():
    scenario = one_queue({"agents": 8, "resolve": 0.7}, {"duration": "3d", **REPEATS})
    events = run(scenario)
    cs = sorted(contacts(events).values(), key=lambda c: c.start)
    later: dict[str, list[int]] = defaultdict(list)
    for c in cs:
        later[c.customer].append(c.start)
    horizon = scenario.start_ms + scenario.duration_ms - 24 * HOUR_MS  # delays are ~2 h

    def share_followed(group):
        followed = [any(t > c.start for t in later[c.customer]) for c in group]
        return sum(followed) / len(followed), len(followed)

    settled = [c for c in cs if c.start < horizon]
    unresolved = [c for c in settled if c.ends and not c.ends[0][1]]
    resolved = [c for c in settled if c.ends and c.ends[0][1]]
    abandoned = [c for c in settled if c.abandoned is not None and c.first_response is None]
    for group, rate in ((unresolved, 0.6), (resolved, 0.1), (abandoned, 0.5)):
        share, n = share_followed(group)
        assert abs(share - rate) < 4 * math.sqrt(rate * (1 - rate) / n), (rate, share, n)


def test_repeat_contact_share_is_what_the_outcomes_imply():
    """Every contact, first or repeat, brings r more on average (from its outcome and
    the repeat probabilities), so in the steady state a share r of all contacts are
    repeats: the repeat-contact rate the pipeline reports."""
    scenario = one_queue({"agents": 9, "resolve": 0.75}, {"duration": "4d", **REPEATS})
    cs = list(contacts(run(scenario)).values())
    settled = scenario.start_ms + 24 * HOUR_MS  # chains have built up by then
    seen: set[str] = set()
    counted = repeats = 0
    for c in sorted(cs, key=lambda c: c.start):
        if c.start >= settled:
            counted += 1
            repeats += c.customer in seen
        seen.add(c.customer)
    abandoned = sum(c.abandoned is not None and c.first_response is None for c in cs) / len(cs)
    ended = [c for c in cs if c.ends]
    unresolved = sum(not c.ends[0][1] for c in ended) / len(ended)
    answered = 1 - abandoned
    r = abandoned * 0.5 + answered * (unresolved * 0.6 + (1 - unresolved) * 0.1)
    assert repeats / counted == pytest.approx(r, abs=0.02)


def test_surveys_score_lower_after_long_waits_and_unresolved_contacts():
    scenario = one_queue({"agents": 8, "resolve": 0.7}, {"duration": "3d"})
    cs = [c for c in contacts(run(scenario)).values() if c.ends]
    answered = [c for c in cs if c.survey is not None]
    assert len(answered) / len(cs) == pytest.approx(0.2, abs=0.02)  # the default response rate

    def satisfied(group):
        return sum(c.survey["csat"] >= 4 for c in group) / len(group)

    quick = [c for c in answered if c.frt < 10_000 and c.ends[0][1]]
    slow = [c for c in answered if c.frt > 60_000 and c.ends[0][1]]
    unresolved = [c for c in answered if c.frt < 10_000 and not c.ends[0][1]]
    assert satisfied(quick) > satisfied(slow) + 0.1
    assert satisfied(quick) > satisfied(unresolved) + 0.4
    nps = {
        k: sum(c.survey["nps"] for c in g) / len(g) for k, g in (("q", quick), ("u", unresolved))
    }
    assert nps["q"] > nps["u"] + 2


def test_async_contacts_wait_for_business_hours():
    email = {
        "channel": "email",
        "name": "inbox",
        "rate": 10,
        "agents": [0] * 9 + [3] * 8 + [0] * 7,
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "handle": "5m",
        "reply": 0.3,
    }
    events = run(parse({"queues": [email], "duration": "7d"}))
    responses = [e["ts"] for e in events if e["type"] == "agent.responded"]
    assert responses
    for ts in responses:
        day, hour = divmod((ts - START) // HOUR_MS, 24)
        assert day < 5 and 9 <= hour < 17 + 1, (day, hour)  # a reply may finish just after 17:00
    assert any(e["type"] == "customer.messaged" for e in events)


def test_every_event_passes_the_contract_and_time_only_moves_forward():
    events = run(load("understaffing"))
    assert {e["type"] for e in events} == set(EVENT_TYPES)
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    assert len({e["event_id"] for e in events}) == len(events)
    for e in events:
        message = encode(e)
        decoded = decode_message(message.value, message.channel, Limits())
        assert decoded.rejections == [], (e, decoded.rejections)
    first = {}
    for e in events:
        first.setdefault(e["interaction_id"], e["type"])
    assert set(first.values()) == {"contact.started"}


def test_the_same_seed_gives_the_same_run_and_another_seed_another():
    scenario = load("incident-spike")
    a = [orjson.dumps(e) for e in run(scenario, seed=7, duration_ms=12 * HOUR_MS)]
    b = [orjson.dumps(e) for e in run(scenario, seed=7, duration_ms=12 * HOUR_MS)]
    c = [orjson.dumps(e) for e in run(scenario, seed=8, duration_ms=12 * HOUR_MS)]
    assert a == b and len(a) > 5_000

    def shape(run_):
        return [(e["type"], e["ts"]) for e in map(orjson.loads, run_)]

    assert shape(a) != shape(c)  # not just other ids (they carry the seed): other traffic


def test_understaffing_differs_from_the_normal_day_only_in_staffing():
    """With the normal day's agents put back, the understaffing scenario gives the
    normal day's events exactly: the same demand, seed for seed."""
    normal, short = load("normal-day"), load("understaffing")
    restored = replace(
        short,
        name=normal.name,
        description=normal.description,
        queues=tuple(
            replace(q, staffing=Staffing(n.staffing.hourly, q.staffing.days))
            for q, n in zip(short.queues, normal.queues, strict=True)
        ),
    )
    assert run(restored, duration_ms=6 * HOUR_MS) == run(normal, duration_ms=6 * HOUR_MS)


def queue_service(events, channel, queue, network=None):
    cs = [
        c
        for c in contacts(events).values()
        if (c.channel, c.queue) == (channel, queue) and network in (None, c.network)
    ]
    return cs


def test_each_scenario_crosses_the_default_targets_it_promises():
    normal = run(load("normal-day"))
    for queue in ("billing", "support"):
        day = service(queue_service(normal, "call", queue))
        assert day.service_level > 0.8 and day.abandonment < 0.1
    chat = service(queue_service(normal, "chat", "support"))
    assert chat.service_level > 0.8 and chat.abandonment < 0.1
    social = service(queue_service(normal, "social", "care"))
    assert social.service_level > 0.9

    spike = run(load("incident-spike"))
    support = hourly(queue_service(spike, "call", "support"), START)
    assert support[10].service_level < 0.8 and support[10].abandonment > 0.1
    assert support[13].service_level > 0.8  # recovered by the afternoon

    short = run(load("understaffing"))
    for queue in ("billing", "support"):
        day = service(queue_service(short, "call", queue))
        assert day.service_level < 0.8 and day.abandonment > 0.1
        assert day.answered / day.offered < 0.9

    storm = run(load("social-storm"))
    twitter = hourly(queue_service(storm, "social", "care", "twitter"), START)
    assert max(twitter[h].frt_p90_s for h in (19, 20, 21)) > 3600
    assert min(twitter[h].service_level for h in (19, 20, 21)) < 0.9
